#!/usr/bin/python3
"""The end-to-end benchmark suite: pylon side by side with its peers, in one run.

    /usr/bin/python3 bench/run.py [--duration S] [--warmup S] [--cases a,b] [--servers a,b|all]
                                  [--client auto|pylon|echo_client] [--report-only DATE]

What one run measures (issue 17, docs/benchmarks.md): echo at 1 and 8 messages in flight per
connection (100 and 1,000 connections), connection churn (also with the server held to 0.4 of a
core, so that it is the bottleneck), fan-out to 1,000 and 10,000 subscribers
on 1 and 2 loops, idle memory at 10k and 100k connections (the server's RSS and the kernel's slab
memory), and permessage-deflate; pylon (its default backend, io_uring, and epoll when `pylon serve
--help` lists --io-backend) against uWebSockets and raw TCP by default (`--servers all` adds Boost.Beast,
websocketpp, gorilla and Node ws).

Each server runs pinned to core 0 (`taskset -c 0`; the 2-loop fan-out: cores 0 and 1) and the
load generator pinned to core 1. Every row records the server's CPU time over the measured window
(utime and stime from /proc/PID/stat) per message, per churn cycle or per delivery, split into
user and system time, the latency percentiles, the errors and /proc/loadavg before and after (the
machine is shared: messages/s swings with foreign load, CPU per message much less). Each case is
written to bench/results/<date>-<case>.json with the machine, the versions and the pylon commit;
the Markdown for docs/benchmarks.md (the top table "Against the bar, in short" computed from this
run, then the detailed tables) goes to bench/results/<date>-summary.md (a run of some cases only:
<date>-summary-<case>+<case>.md).

Clients: `pylon bench` for every WebSocket server in the echo cases (same client for all); the raw
TCP echo cannot speak WebSocket, so it is driven by bench/peers/echo_client, which sends the same
masked frames (and as many in flight) and reads the same byte count back, and pylon is run once
more with echo_client so that pylon / raw TCP compares like with like. Churn and idle memory use
echo_client for every server (churn: connect, upgrade, close handshake; idle: --hold).

Peers are built by bench/peers/build.sh into build/bench-peers (never in the repository).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

# Some are re-exported: scripts written against run.py (bench/tls*.py) import them from here.
from benchlib import (CLIENT_CORE, RESULTS, ROOT, SERVER_CORE, UWS_DIR_CANDIDATES,  # noqa: F401
                      WARM_UP_CONNECTIONS, Server, cpu_seconds, free_port, held, hold, kernel_growth,
                      kernel_memory, kernel_tcp_pages, loadavg, log, machine, rss_bytes, run_client,
                      sh, start_holding, stop_clients, today, versions)
from summary import markdown

MAX_MESSAGE = 16 << 20
OPEN_FILE_LIMIT_NOTE = ("the per-process open-file limit here is 20,000 (hard, cannot be raised "
                        "without CAP_SYS_RESOURCE)")

# name -> (connections, message size, messages in flight per connection)
ECHO_CASES = {
    "echo-100x16": (100, 16, 1),
    "echo-100x16x8": (100, 16, 8),
    "echo-1000x16": (1000, 16, 1),
    "echo-1000x16x8": (1000, 16, 8),
    "echo-100x1k": (100, 1024, 1),
    "echo-10000x16": (10000, 16, 1),
}
# name -> (connections cycling at once (connect, upgrade, close handshake, again), the share of a
# core the server is held to). Unheld, the client's core is the bottleneck on a 2-core machine (on
# loopback it also runs the server's side of every segment it sends), so cycles/s stays near the
# raw TCP floor whatever the server; held to 0.4 of a core (pylon used ~0.55 unheld on 2026-12-08),
# the server is the bottleneck.
CHURN_CASES = {"churn-50": (50, None), "churn-50-held": (50, 0.4)}
# name -> (subscribers, server loops, publishes per second): 100,000 deliveries/s in each
FANOUT_CASES = {
    "fanout-1x1k": (1000, 1, 100),
    "fanout-1x10k": (10000, 1, 10),
    "fanout-1x1k-2loops": (1000, 2, 100),
    "fanout-1x10k-2loops": (10000, 2, 10),
}
IDLE_CASES = {"idle-10k": 10000, "idle-100k": 100000}
IDLE_SETTLE_SECONDS = 5  # from the last connection opened to the memory read
# permessage-deflate (pylon only): scenario, connections (fanout: subscribers), rate (fanout);
# 1 KiB of JSON records (`pylon bench --payload json`) with each `--compression` mode.
DEFLATE_CASES = {"deflate-echo-100x1k": ("echo", 100, 0), "deflate-fanout-1x1k": ("fanout", 1000, 100)}
DEFLATE_MODES = ("off", "shared", "dedicated")
ALL_CASES = (list(ECHO_CASES) + list(CHURN_CASES) + list(FANOUT_CASES) + list(IDLE_CASES) +
             list(DEFLATE_CASES))
# What `make bench` runs: what issue 17 asks. At the default 3 rounds of 8 s about 22 minutes;
# BENCH_ROUNDS=5 took 32 minutes on 2026-12-08 (10.5 at 5 s and 1 round on 2026-12-06).
DEFAULT_CASES = [c for c in ALL_CASES if c not in ("echo-100x1k", "echo-10000x16")]
UWS = "uWebSockets"
EPOLL = "pylon (epoll)"  # pylon's other backend; "pylon" runs the default, io_uring
DEFAULT_SERVERS = ["pylon", EPOLL, UWS, "raw TCP"]
# Servers whose listeners set SO_REUSEPORT, so that several processes can share one port (pylon;
# uSockets does unless told not to): the idle cases above 20,000 connections run them as several
# processes.
REUSEPORT_SERVERS = {"pylon", EPOLL, UWS}


def find_uws_build_script():
    for directory in UWS_DIR_CANDIDATES:
        if os.path.exists(os.path.join(directory, "build.sh")):
            return directory
    return None


def pylon_command(args, port, threads=1):
    return [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", str(threads),
            "--max-message-size", str(MAX_MESSAGE), "--log-level", args.pylon_log_level,
            "--max-connections", "200000", "--ping-interval", "3600", "--pong-timeout", "3600"]


def server_commands(args, port):
    """name -> list of commands (one per process), every server this machine has."""
    peers = args.peers_dir
    servers = {"pylon": [pylon_command(args, port)]}
    if args.io_backend:
        servers[EPOLL] = [pylon_command(args, port) + ["--io-backend", "epoll"]]
    if os.path.exists(f"{peers}/uws/uws_echo"):
        servers[UWS] = [[f"{peers}/uws/uws_echo", str(port)]]
    servers["Boost.Beast"] = [[f"{peers}/beast_echo", str(port)]]
    servers["websocketpp"] = [[f"{peers}/websocketpp_echo", str(port)]]
    servers["gorilla"] = [[f"{peers}/gorilla_echo", str(port)]]
    servers["Node ws"] = [["node", f"{peers}/ws_echo.js", str(port)]]
    servers["raw TCP"] = [[f"{peers}/raw_tcp_echo", str(port)]]
    return servers


def selected_servers(args, port, names=None):
    """The servers of this run, in the order of server_commands (optionally only `names`)."""
    return [name for name in server_commands(args, port)
            if (not args.servers or name in args.servers) and (names is None or name in names)]


def pylon_has_bench(pylon):
    result = subprocess.run([pylon, "bench", "--help"], capture_output=True, text=True)
    return result.returncode == 0 and "echo" in result.stdout


def pylon_has_io_backend(pylon):
    result = subprocess.run([pylon, "serve", "--help"], capture_output=True, text=True)
    return "--io-backend" in result.stdout


def find_key(data, *names):
    """The first value under any of `names`, searching nested objects breadth-first."""
    queue = [data]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            for name in names:
                if name in node and not isinstance(node[name], (dict, list)):
                    return node[name]
            queue.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            queue.extend(node)
    return None


def find_key_node(data, name):
    queue = [data]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if name in node:
                return node[name]
            queue.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return None


def latency_of(data, key="latency_us"):
    node = find_key_node(data, key)
    if isinstance(node, dict):
        return {k: node.get(k) for k in ("p50", "p90", "p99", "p999", "max") if k in node}
    return {}


def cpu_split(data, per_unit):
    """The server's CPU per unit (message, cycle, delivery) split into user and system time, from
    either client's JSON (pylon bench: server.cpu_user_seconds; echo_client: server_cpu_user_seconds)."""
    user = find_key(data, "cpu_user_seconds", "server_cpu_user_seconds")
    system = find_key(data, "cpu_system_seconds", "server_cpu_system_seconds")
    try:
        share = float(user) / (float(user) + float(system))
        return {"server_cpu_user_us": float(per_unit) * share,
                "server_cpu_system_us": float(per_unit) * (1 - share)}
    except (TypeError, ValueError, ZeroDivisionError):
        return {}


def echo_command(args, client, server, connections, size, in_flight=1):
    if client == "pylon":
        return [args.pylon, "bench", "echo", "--url", f"ws://127.0.0.1:{server.port}/ws/echo",
                "--connections", str(connections), "--duration", str(args.duration),
                "--warmup", str(args.warmup), "--size", str(size), "--binary", "--threads", "1",
                "--in-flight", str(in_flight), "--pid", str(server.pids[0]), "--json", "{json}"]
    return [f"{args.peers_dir}/echo_client", "--port", str(server.port),
            "--mode", "raw" if server.name == "raw TCP" else "ws",
            "--connections", str(connections), "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--size", str(size), "--in-flight", str(in_flight),
            "--pid", ",".join(map(str, server.pids)), "--json", "{json}"]


def summarize_echo(data):
    per_message = find_key(data, "server_cpu_us_per_message")
    return {
        "messages_per_second": find_key(data, "messages_per_second", "msgs_per_second", "throughput"),
        "server_cpu_us_per_message": per_message,
        **cpu_split(data, per_message),
        "server_cpu_seconds": find_key(data, "server_cpu_seconds"),
        "latency_us": latency_of(data),
        "errors": find_key_node(data, "errors"),
    }


def measure(entry, server_cm, body):
    """Runs body(server) inside the server's lifetime with the load average around it; a server
    that does not start (or a client that hangs) becomes a skipped row with the reason."""
    try:
        with server_cm as server:
            entry["loadavg_before"] = loadavg()
            body(server)
            entry["loadavg_after"] = loadavg()
        return True
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        entry["skipped"] = one_line(error)
        log(f"{entry['server']}: {error}")
        return False


# What each round of an interleaved case keeps beside the chosen round's whole entry.
ROUND_FIELDS = ("server_cpu_us_per_message", "server_cpu_us_per_cycle", "server_cpu_user_us",
                "server_cpu_system_us", "messages_per_second", "cycles_per_second", "loadavg_before",
                "loadavg_after", "skipped")


def interleaved(args, runs, one, port, key):
    """Runs each of `runs` (one(run, port) -> entry) `args.rounds` times, round by round, so that
    the machine's foreign load falls on every server alike, and keeps for each the round with the
    median `key`, every round's figures under "rounds"."""
    by_run = [[] for _ in runs]
    for _ in range(args.rounds):
        for index, run in enumerate(runs):
            port = free_port(port + 1)  # a fresh port: the previous server's TIME_WAIT sockets stay behind
            by_run[index].append(one(run, port))
    results = []
    for entries in by_run:
        measured = sorted((e for e in entries if e.get(key) is not None), key=lambda e: e[key])
        chosen = dict(measured[len(measured) // 2]) if measured else entries[-1]
        chosen["rounds"] = [{k: e[k] for k in ROUND_FIELDS if k in e} for e in entries]
        results.append(chosen)
    return results


def run_echo_case(args, case, port, ws_client):
    connections, size, in_flight = ECHO_CASES[case]
    runs = []
    for name in selected_servers(args, port):
        runs.append((name, "echo_client" if name == "raw TCP" else ws_client))
        if name == "pylon" and ws_client != "echo_client":
            runs.append((name, "echo_client"))  # like for like with the raw TCP ceiling

    def one(run, port):
        name, client = run
        entry = {"server": name, "client": "pylon bench" if client == "pylon" else "echo_client",
                 "in_flight": in_flight, "server_command": server_commands(args, port)[name][0]}

        def body(server):
            data = run_client(echo_command(args, client, server, connections, size, in_flight),
                              timeout=args.duration + args.warmup + 120)
            entry.update(summarize_echo(data))
            entry["client_output"] = data

        if measure(entry, Server(name, server_commands(args, port)[name], port), body):
            log(f"{case} {name} [{entry['client']}]: {number(entry['messages_per_second'], 0)} msg/s, "
                f"{number(entry['server_cpu_us_per_message'])} µs CPU/msg "
                f"(user {number(entry.get('server_cpu_user_us'))}), load {entry['loadavg_after']}")
        return entry

    return interleaved(args, runs, one, port, "server_cpu_us_per_message")


def run_churn_case(args, case, port):
    """Connect, upgrade, close handshake, again: echo_client --churn with the same number of
    slots against every server (raw TCP: the floor, the same bytes exchanged without WebSocket),
    each held to its share of a core if the case has one."""
    slots, cpu_share = CHURN_CASES[case]

    def one(name, port):
        entry = {"server": name, "client": "echo_client --churn", "connections": slots,
                 "server_cpu_share": cpu_share}

        def body(server):
            data = run_client([f"{args.peers_dir}/echo_client", "--churn", "--port", str(server.port),
                               "--mode", "raw" if name == "raw TCP" else "ws",
                               "--connections", str(slots), "--duration", str(args.duration),
                               "--warmup", str(args.warmup), "--pid", ",".join(map(str, server.pids)),
                               "--json", "{json}"], timeout=args.duration + args.warmup + 60)
            per_cycle = data.get("server_cpu_us_per_cycle")
            entry.update({"cycles_per_second": data.get("cycles_per_second"),
                          "server_cpu_us_per_cycle": per_cycle, **cpu_split(data, per_cycle),
                          "latency_us": latency_of(data), "errors": data.get("errors"),
                          "client_output": data})

        if measure(entry, Server(name, server_commands(args, port)[name], port, cpu_share=cpu_share),
                   body):
            log(f"{case} {name}: {number(entry['cycles_per_second'], 0)} cycles/s, "
                f"{number(entry['server_cpu_us_per_cycle'])} µs CPU/cycle, errors {entry['errors']}")
        return entry

    return interleaved(args, selected_servers(args, port), one, port,
                       "cycles_per_second" if cpu_share else "server_cpu_us_per_cycle")


def hold_connections(args, port, connections, clients_needed, sources):
    """Opens `connections` idle WebSockets with echo_client --hold processes; returns them."""
    per_client = -(-connections // clients_needed)
    processes, opened = [], 0
    for index in range(clients_needed):
        count = min(per_client, connections - opened)
        opened += count
        source_list = ",".join(sources[index::clients_needed]) or "127.0.0.1"
        processes.append(start_holding(args.peers_dir, port, count, source_list))
    connected, errors = 0, {}
    for p in processes:
        report = held(p)
        connected += report.get("connected", 0)
        for kind, count in report.get("errors", {}).items():
            errors[kind] = errors.get(kind, 0) + count
    return processes, connected, errors


def run_idle_case(args, case, port):
    connections = IDLE_CASES[case]
    results = []
    server_processes = 1 if connections <= 15000 else -(-connections // 15000)
    clients_needed = -(-connections // 18000)
    # One source address per client process: a (source address, destination) pair has about
    # 28,000 ephemeral ports here (ip_local_port_range 32768-60999).
    sources = [f"127.0.0.{i}" for i in range(1, 1 + clients_needed)]
    for name in selected_servers(args, port):
        if name == "raw TCP":
            continue  # no WebSocket handshake: not a memory-per-WebSocket figure
        port = free_port(port + 1)
        entry = {"server": name, "client": "echo_client --hold", "connections": connections}
        if server_processes > 1:
            if name not in REUSEPORT_SERVERS:
                entry["skipped"] = (f"{connections} connections need {server_processes} server "
                                    f"processes ({OPEN_FILE_LIMIT_NOTE}); this peer is run as "
                                    "one process in the suite")
                results.append(entry)
                continue
            entry["server_processes"] = server_processes
            entry["note"] = (f"{name} run as {server_processes} processes (one thread each) on one "
                             f"port behind SO_REUSEPORT, all pinned to core {SERVER_CORE}; "
                             f"{OPEN_FILE_LIMIT_NOTE}")
        entry["client_processes"] = clients_needed
        entry["source_addresses"] = sources

        def body(server):
            warm, _ = hold(args.peers_dir, port, WARM_UP_CONNECTIONS * server_processes)
            time.sleep(0.5)
            rss_before, tcp_before, kernel_before = rss_bytes(server.pids), kernel_tcp_pages(), kernel_memory()
            started = time.time()
            clients, connected, client_errors = hold_connections(args, port, connections,
                                                                  clients_needed, sources)
            entry["connect_seconds"] = round(time.time() - started, 2)
            # Idle long enough for io_uring to park every receive (2-4 s without bytes: the
            # UringPoller comment); under epoll and for the peers nothing changes after the first
            # second.
            time.sleep(IDLE_SETTLE_SECONDS)
            rss_after, tcp_after, kernel_after = rss_bytes(server.pids), kernel_tcp_pages(), kernel_memory()
            stop_clients(clients + [warm])
            entry.update(connected=connected, client_errors=client_errors,
                         server_rss_before_bytes=rss_before, server_rss_after_bytes=rss_after)
            if connected:
                entry["server_bytes_per_connection"] = round((rss_after - rss_before) / connected, 1)
                # TCP buffer memory only (the "mem" of /proc/net/sockstat, both ends): idle sockets
                # hold none, so this stays near 0.
                entry["kernel_tcp_buffer_bytes_per_connection"] = round(
                    (tcp_after - tcp_before) * 4096 / connected, 1)
                # The socket structures themselves: slab growth, both ends of every connection.
                entry["kernel"] = kernel_growth(kernel_before, kernel_after, connected)

        commands = server_commands(args, port)[name] * server_processes
        if measure(entry, Server(name, commands, port), body):
            log(f"{case} {name}: {entry.get('connected')} connected, "
                f"{entry.get('server_bytes_per_connection')} B/connection (server RSS), kernel "
                f"{entry.get('kernel', {}).get('slabinfo_bytes_per_connection')} B (both ends)")
        results.append(entry)
    return results


def run_fanout_case(args, case, port, ws_client):
    subscribers, loops, rate = FANOUT_CASES[case]
    results = []
    # Two loops need two cores: the server gets both, and the client shares core 1 with it.
    cores = SERVER_CORE if loops == 1 else f"{SERVER_CORE},{CLIENT_CORE}"
    for name in selected_servers(args, port, names=("pylon", EPOLL)):
        entry = {"server": name, "client": "pylon bench", "subscribers": subscribers, "loops": loops,
                 "server_cores": cores, "publishers": 1, "rate": rate, "size": 64}
        if ws_client != "pylon":
            entry["skipped"] = "pylon bench (fanout scenario) is not in this pylon binary"
            results.append(entry)
            continue
        port = free_port(port + 1)
        command = server_commands(args, port)[name][0]
        command[command.index("--threads") + 1] = str(loops)

        def body(server):
            data = run_client([args.pylon, "bench", "fanout", "--url", f"ws://127.0.0.1:{port}/ws",
                               "--subscribers", str(subscribers), "--publishers", "1",
                               "--rate", str(rate), "--size", "64",
                               "--duration", str(args.duration), "--warmup", str(args.warmup),
                               "--threads", "1", "--pid", str(server.pids[0]), "--json", "{json}"],
                              timeout=args.duration + args.warmup + 180)
            per_delivery = data.get("server_cpu_us_per_message")
            entry.update({"latency_us": latency_of(data),
                          "last_subscriber_us": latency_of(data, "last_delivery_us"),
                          "delivered_per_second": data.get("delivered_per_second"),
                          "server_cpu_us_per_delivery": per_delivery, **cpu_split(data, per_delivery),
                          "errors": find_key(data.get("errors", {}), "total"), "client_output": data})

        if measure(entry, Server(name, [command], port, cores=cores), body):
            log(f"{case} {name}: last subscriber p99 {entry['last_subscriber_us'].get('p99')} µs, "
                f"{number(entry['server_cpu_us_per_delivery'])} µs CPU/delivery")
        results.append(entry)
    if loops == 1:
        floor = {"server": "raw TCP floor", "client": "fanout_floor", "subscribers": subscribers,
                 "rate": rate, "size": 64, "loadavg_before": loadavg()}
        floor["client_output"] = run_client(
            [f"{args.peers_dir}/fanout_floor", "--connections", str(subscribers), "--size", "64",
             "--messages", str(max(10, int(args.duration * rate))),
             "--interval-ms", str(int(1000 / rate)), "--json", "{json}"],
            timeout=args.duration + 180)
        floor["loadavg_after"] = loadavg()
        results.append(floor)
    return results


def compression_bytes(port):
    """pylon's compressed and uncompressed bytes sent so far, from /metrics."""
    # A saturated server (dedicated fan-out) may still be working through its backlog.
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = b""
        while chunk := connection.recv(65536):
            text += chunk
    values = {}
    for name in ("compressed", "uncompressed"):
        match = re.search(rf'^pylon_{name}_bytes_total{{direction="out"}} (\S+)$', text.decode(), re.M)
        values[name] = float(match.group(1)) if match else 0.0
    return values


def run_deflate_case(args, case, port, ws_client):
    """The same traffic with compression off, shared and dedicated: CPU per message, throughput,
    bytes on the wire (compressed ÷ uncompressed bytes out, from /metrics) and RSS growth per
    connection."""
    scenario, connections, rate = DEFLATE_CASES[case]
    results = []
    for mode in DEFLATE_MODES:
        entry = {"server": "pylon", "client": "pylon bench", "compression": mode, "scenario": scenario,
                 "connections": connections, "size": 1024, "payload": "json"}
        if ws_client != "pylon":
            entry["skipped"] = "needs pylon bench"
            results.append(entry)
            continue
        port = free_port(port + 1)
        commands = [pylon_command(args, port) + ["--compression", mode, "--max-publish-rate", "100000"]]
        common = ["--duration", str(args.duration), "--warmup", str(args.warmup), "--size", "1024",
                  "--payload", "json", "--compression", "--threads", "1", "--json", "{json}"]

        def body(server):
            before = compression_bytes(port)
            if scenario == "echo":
                command = [args.pylon, "bench", "echo", "--url", f"ws://127.0.0.1:{port}/ws/echo",
                           "--connections", str(connections), "--pid", str(server.pids[0])] + common
            else:
                command = [args.pylon, "bench", "fanout", "--url", f"ws://127.0.0.1:{port}/ws",
                           "--subscribers", str(connections), "--rate", str(rate), "--pid",
                           str(server.pids[0])] + common
            data = run_client(command, timeout=args.duration + args.warmup + 180)
            after = compression_bytes(port)
            sent = after["uncompressed"] - before["uncompressed"]
            entry["wire_ratio"] = (after["compressed"] - before["compressed"]) / sent if sent else 1.0
            entry.update(summarize_echo(data))  # fan-out: its throughput is deliveries per second
            rss = data.get("server", {}) if isinstance(data, dict) else {}
            if rss.get("rss_after_bytes") and rss.get("rss_before_bytes"):
                entry["server_bytes_per_connection"] = (rss["rss_after_bytes"] - rss["rss_before_bytes"]) / connections
            entry["client_output"] = data

        if measure(entry, Server("pylon", commands, port), body):
            log(f"{case} {mode}: {number(entry['messages_per_second'], 0)} msg/s, "
                f"{number(entry['server_cpu_us_per_message'])} µs CPU/msg, wire {entry['wire_ratio']:.3f}")
        results.append(entry)
    return results


def one_line(error):
    return " ".join(str(error).split())[:300]


def ratio(a, b):
    try:
        return f"{float(a) / float(b):.2f}"
    except (TypeError, ValueError, ZeroDivisionError):
        return "–"


def number(value, digits=2):
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "–"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 8)),
                        help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)),
                        help="echo and churn: rounds interleaved over the servers; the median is kept")
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--cases", default=os.environ.get("BENCH_CASES", ",".join(DEFAULT_CASES)),
                        help=f"default: {','.join(DEFAULT_CASES)}; all: {','.join(ALL_CASES)}")
    parser.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", ",".join(DEFAULT_SERVERS)),
                        help="comma-separated names, or all (adds Boost.Beast, websocketpp, gorilla, Node ws)")
    parser.add_argument("--client", default=os.environ.get("BENCH_CLIENT", "auto"),
                        choices=["auto", "pylon", "echo_client"])
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--pylon-log-level", default=os.environ.get("BENCH_PYLON_LOG_LEVEL", "warn"),
                        help="pylon serve's --log-level (info: the default's access log, as operators run it)")
    parser.add_argument("--peers-dir", default=os.path.join(ROOT, "build", "bench-peers"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 19300)))
    parser.add_argument("--report-only", metavar="DATE",
                        help="only write the summary from bench/results/DATE-*.json")
    args = parser.parse_args()
    args.cases = [c for c in ("all" if args.cases == "all" else args.cases).split(",") if c]
    if args.cases == ["all"]:
        args.cases = ALL_CASES
    args.servers = [] if args.servers == "all" else [s for s in args.servers.split(",") if s]
    args.pylon, args.peers_dir = os.path.abspath(args.pylon), os.path.abspath(args.peers_dir)

    if args.report_only:
        documents = []
        for case in ALL_CASES:
            path = os.path.join(RESULTS, f"{args.report_only}-{case}.json")
            if os.path.exists(path):
                documents.append(json.load(open(path)))
        sys.stdout.write(markdown(documents))
        return

    unknown = [c for c in args.cases if c not in ALL_CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {ALL_CASES}")
    subprocess.run([os.path.join(ROOT, "bench", "peers", "build.sh"), args.peers_dir], check=True)
    if not os.path.exists(args.pylon):
        parser.error(f"{args.pylon} is missing: make build first")
    ws_client = args.client
    if ws_client == "auto":
        ws_client = "pylon" if pylon_has_bench(args.pylon) else "echo_client"
    args.io_backend = pylon_has_io_backend(args.pylon)
    log(f"WebSocket load generator: {'pylon bench' if ws_client == 'pylon' else 'echo_client'}; "
        f"epoll row: {'yes' if args.io_backend else 'no --io-backend in this binary (row skipped)'}")

    date = today()
    common = {"date": date, "machine": machine(), "versions": versions(args.pylon),
              "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds,
                           "pylon_log_level": args.pylon_log_level,
                           "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                           "messages": "binary", "ws_client":
                               "pylon bench" if ws_client == "pylon" else "echo_client"}}
    os.makedirs(RESULTS, exist_ok=True)
    documents = []
    port = args.port
    started = time.time()
    for case in args.cases:
        log(f"case {case} ({time.time() - started:.0f} s into the run)")
        if case in ECHO_CASES:
            results = run_echo_case(args, case, port, ws_client)
        elif case in CHURN_CASES:
            results = run_churn_case(args, case, port)
        elif case in IDLE_CASES:
            results = run_idle_case(args, case, port)
        elif case in DEFLATE_CASES:
            results = run_deflate_case(args, case, port, ws_client)
        else:
            results = run_fanout_case(args, case, port, ws_client)
        port += 100  # fresh ports: no TIME_WAIT collisions with the previous case
        document = dict(common, case=case, results=results)
        with open(os.path.join(RESULTS, f"{date}-{case}.json"), "w") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
        documents.append(document)
    log(f"the run took {time.time() - started:.0f} s")
    text = markdown(documents)
    # A partial run must not overwrite the day's full summary.
    name = "summary" if set(args.cases) >= set(DEFAULT_CASES) else "summary-" + "+".join(args.cases)
    with open(os.path.join(RESULTS, f"{date}-{name}.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)

if __name__ == "__main__":
    main()
