"""epoll against io_uring, pylon's two event-loop backends (`io_backend`), side by side (issue 17).

    /usr/bin/python3 bench/io_uring.py [--pylon build/pylon] [--rounds 3] [--duration 10]
                                       [--warmup 2] [--fanout-rate 100]
                                       [--out bench/results/DATE-io-uring]

Every round runs every case once per backend, the two back to back (which one goes first
alternates from round to round), so both see the same foreign load. The server is
`pylon serve --threads 1 --io-backend B --log-level warn` pinned to core 0; the load is
`pylon bench` pinned to core 1. Cases: echo, 100 connections × 16 B binary, at 1 and at 8
messages in flight per connection; fan-out, 1 publisher to 1,000 subscribers of one topic,
64 B at --fanout-rate publishes/s. The figure is the server's CPU per message (echo: per echoed
message; fan-out: per delivery), utime + stime over the measured window as `pylon bench --pid`
reports it, with the user/system split sampled from /proc/PID/stat over the same window.
Writes OUT.json (every run, with /proc/loadavg around it) and OUT.md (per-round ratios and
their median).
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

from echo_instructions import free_port, wait_listening

SERVER_CORE, CLIENT_CORE = "0", "1"
BACKENDS = ["epoll", "io_uring"]
CASES = {
    "echo-100x16-1": ["echo", "--connections", "100", "--size", "16", "--binary",
                      "--in-flight", "1"],
    "echo-100x16-8": ["echo", "--connections", "100", "--size", "16", "--binary",
                      "--in-flight", "8"],
    "fanout-1x1k": ["fanout", "--subscribers", "1000", "--publishers", "1", "--size", "64"],
}
TICKS = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def cpu_ticks(pid):
    """(utime, stime) of the whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def run_one(args, case, backend):
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, args.pylon, "serve", "--listen", f"127.0.0.1:{port}",
         "--threads", "1", "--io-backend", backend, "--log-level", "warn"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, server)
        path = "/ws/echo" if case.startswith("echo") else "/ws"
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = ["taskset", "-c", CLIENT_CORE, args.pylon, "bench", *CASES[case],
                       "--url", f"ws://127.0.0.1:{port}{path}", "--threads", "1",
                       "--duration", str(args.duration), "--warmup", str(args.warmup),
                       "--pid", str(server.pid), "--json", out.name]
            if case.startswith("fanout"):
                command += ["--rate", str(args.fanout_rate)]
            # The user/system split over (about) the bench's measured window, which ends when
            # it stops sending, just before it exits: /proc/PID/stat sampled every 0.2 s, the
            # window taken back from the last sample before the exit. The total below is the
            # bench's own, exactly over its window.
            samples = []
            entry = {"case": case, "backend": backend, "loadavg_before": loadavg()}
            client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            while client.poll() is None:
                samples.append((time.monotonic(), cpu_ticks(server.pid)))
                time.sleep(0.2)
            error = client.stderr.read()
            end = next(s for s in reversed(samples) if s[0] <= samples[-1][0] - 0.5)
            start = next((s for s in samples if s[0] >= end[0] - args.duration + 0.5), samples[0])
            entry["loadavg_after"] = loadavg()
            data = json.load(open(out.name))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    user = end[1][0] - start[1][0]
    system = end[1][1] - start[1][1]
    entry.update({
        "messages_per_second": data.get("throughput"),
        "server_cpu_us_per_message": data.get("server_cpu_us_per_message"),
        "server_cpu_seconds": data.get("server_cpu_seconds"),
        "user_share": user / (user + system) if user + system > 0 else None,
        "errors": data.get("errors", {}).get("total"),
        "lost": data.get("lost"),
        "client_exit": client.returncode,
        "client_stderr": error[-500:] if client.returncode else "",
    })
    if case.startswith("fanout"):
        entry["incomplete"] = data.get("incomplete")
    print(f"{case} {backend}: {entry['messages_per_second']:.0f} msg/s, "
          f"{entry['server_cpu_us_per_message']:.3f} us CPU/msg "
          f"(user {entry['user_share'] or 0:.0%}), load {entry['loadavg_after']}", flush=True)
    return entry


def markdown(runs, rounds):
    lines = ["| case | epoll µs CPU/msg (median) | io_uring µs CPU/msg (median) | "
             "io_uring / epoll per round | median ratio | user share epoll / io_uring |",
             "|---|---|---|---|---|---|"]
    for case in CASES:
        by = {backend: [r for r in runs if r["case"] == case and r["backend"] == backend]
              for backend in BACKENDS}
        ratios = [u["server_cpu_us_per_message"] / e["server_cpu_us_per_message"]
                  for e, u in zip(by["epoll"], by["io_uring"])]
        median = {b: statistics.median(r["server_cpu_us_per_message"] for r in by[b])
                  for b in BACKENDS}
        share = {b: statistics.median(r["user_share"] or 0 for r in by[b]) for b in BACKENDS}
        lines.append(f"| {case} | {median['epoll']:.3f} | {median['io_uring']:.3f} | "
                     f"{', '.join(f'{r:.2f}' for r in ratios)} | "
                     f"**{statistics.median(ratios):.2f}** | "
                     f"{share['epoll']:.0%} / {share['io_uring']:.0%} |")
    rates = ["", "| case | epoll msg/s (median) | io_uring msg/s (median) |", "|---|---|---|"]
    for case in CASES:
        median = {b: statistics.median(r["messages_per_second"] for r in runs
                                       if r["case"] == case and r["backend"] == b)
                  for b in BACKENDS}
        rates.append(f"| {case} | {median['epoll']:.0f} | {median['io_uring']:.0f} |")
    loads = [float(r["loadavg_after"]) for r in runs]
    return "\n".join(lines + rates + [
        "", f"{rounds} rounds, backends alternating within each round; load average "
        f"{min(loads):.1f}–{max(loads):.1f} after the runs."]) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pylon", default="build/pylon")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--fanout-rate", type=float, default=100)
    parser.add_argument("--out", default=f"bench/results/{datetime.date.today()}-io-uring")
    args = parser.parse_args()
    runs = []
    for index in range(args.rounds):
        order = BACKENDS if index % 2 == 0 else BACKENDS[::-1]
        for case in CASES:
            for backend in order:
                runs.append(run_one(args, case, backend) | {"round": index + 1})
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    with open(args.out + ".json", "w") as f:
        json.dump({"date": str(datetime.datetime.now(datetime.timezone.utc)),
                   "commit": commit.strip(), "kernel": os.uname().release,
                   "cores": os.cpu_count(), "duration": args.duration, "warmup": args.warmup,
                   "fanout_rate": args.fanout_rate, "runs": runs}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(runs, args.rounds))
    print(open(args.out + ".md").read())


if __name__ == "__main__":
    main()
