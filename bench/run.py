#!/usr/bin/python3
"""The end-to-end benchmark suite: pylon side by side with its peers, in one run.

    /usr/bin/python3 bench/run.py [--duration S] [--warmup S] [--cases a,b] [--servers a,b]
                                  [--client auto|pylon|echo_client] [--report-only]

For every case each server runs pinned to core 0 (`taskset -c 0`) and the load generator pinned
to core 1. Echo cases record, per server, messages/s and server CPU time per message (utime +
stime from /proc/PID/stat over the measured window, divided by the messages echoed), the latency
percentiles, the errors, and /proc/loadavg before and after (the machine is shared: messages/s
swings with foreign load, CPU per message much less). Each case is written to
bench/results/<date>-<case>.json with the machine, the versions and the pylon commit; the
Markdown tables for docs/benchmarks.md go to bench/results/<date>-summary.md (a run of some
cases only: <date>-summary-<case>+<case>.md).

The load generator is `pylon bench` when the pylon binary has it (same client for every
WebSocket server). The raw TCP echo cannot speak WebSocket, so that case uses
bench/peers/echo_client, which sends the same masked frames and reads the same byte count back;
pylon is run with echo_client too in every echo case ("pylon/echo_client"), so that
pylon / raw TCP compares like with like. Idle memory uses echo_client --hold for every server
(the figure is the server's RSS growth per connection, whatever the client).

Peers are built by bench/peers/build.sh into build/bench-peers (never in the repository).
"""
import argparse
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
UWS_DIR_CANDIDATES = [os.path.join(ROOT, "..", "shared", "peers", "uwebsockets"),
                      "/work/shared/peers/uwebsockets"]
MAX_MESSAGE = 16 << 20
OPEN_FILE_LIMIT_NOTE = ("the per-process open-file limit here is 20,000 (hard, cannot be raised "
                        "without CAP_SYS_RESOURCE)")

# name -> (case kind, connections, message size)
ECHO_CASES = {
    "echo-100x16": (100, 16),
    "echo-100x1k": (100, 1024),
    "echo-1000x16": (1000, 16),
    "echo-10000x16": (10000, 16),
}
IDLE_CASES = {"idle-10k": 10000, "idle-100k": 100000}
FANOUT_CASES = {"fanout-1x10k": 10000}
# permessage-deflate (pylon only): scenario, connections (fanout: subscribers), rate (fanout);
# 1 KiB of JSON records (`pylon bench --payload json`) with each `--compression` mode.
DEFLATE_CASES = {"deflate-echo-100x1k": ("echo", 100, 0), "deflate-fanout-1x1k": ("fanout", 1000, 100)}
DEFLATE_MODES = ("off", "shared", "dedicated")
ALL_CASES = list(ECHO_CASES) + list(FANOUT_CASES) + list(IDLE_CASES) + list(DEFLATE_CASES)
SERVER_CORE, CLIENT_CORE = "0", "1"
# Servers whose listeners set SO_REUSEPORT, so that several processes can share one port (pylon;
# uSockets does unless told not to): the idle cases above 20,000 connections run them as several
# processes.
REUSEPORT_SERVERS = {"pylon", "uWebSockets"}


def log(message):
    print(f"[bench] {message}", flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def sh(command):
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def kernel_tcp_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                return int(re.search(r"mem (\d+)", line).group(1))
    return 0


def machine():
    lscpu = sh("lscpu")
    field = lambda name: (re.search(rf"^{name}:\s*(.+)$", lscpu, re.M) or [None, ""])[1]
    return {
        "cpu_model": field("Model name"),
        "cpus": os.cpu_count(),
        "threads_per_core": field(r"Thread\(s\) per core"),
        "kernel": sh("uname -r"),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "memory": sh("free -h | awk '/Mem:/ {print $2}'"),
        "open_file_limit": sh("ulimit -Hn"),
    }


def versions(pylon):
    packages = ["libboost-dev", "libwebsocketpp-dev", "libasio-dev", "golang-go",
                "golang-github-gorilla-websocket-dev", "nodejs", "node-ws", "g++"]
    result = {p: sh(f"dpkg-query -W -f='${{Version}}' {p} 2>/dev/null") for p in packages}
    for directory in UWS_DIR_CANDIDATES:
        commits = os.path.join(directory, "COMMITS")
        if os.path.exists(commits):
            result["uwebsockets"] = open(commits).read().strip()
            break
    result["pylon_commit"] = sh(f"git -C {ROOT} rev-parse HEAD")
    result["pylon_tree_dirty"] = bool(sh(f"git -C {ROOT} status --porcelain -- src include"))
    result["pylon_version"] = sh(f"{pylon} version 2>&1 | head -1")
    return result


class Server:
    """One server under test: a set of processes pinned to the server core, stopped by PID."""

    def __init__(self, name, commands, port, env=None):
        self.name, self.commands, self.port = name, commands, port
        # Node ws comes from Debian's node-ws, outside node's default module path.
        self.env = dict(os.environ, NODE_PATH="/usr/share/nodejs", **(env or {}))
        self.processes = []

    def __enter__(self):
        for command in self.commands:
            self.processes.append(subprocess.Popen(
                ["taskset", "-c", SERVER_CORE] + command, env=self.env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
        deadline = time.time() + 15
        while time.time() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {p.stderr.read().decode()[:500]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.3 if len(self.processes) == 1 else 1.0)  # let every process listen
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} does not listen on {self.port}")

    @property
    def pids(self):
        return [p.pid for p in self.processes]

    def __exit__(self, *exc):
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def free_port(port):
    """`port`, or the next one nobody listens on. Servers here listen with SO_REUSEPORT (pylon,
    uSockets), so a stray server left on a port would silently take part of the connections of
    the one under test (it happened on 2026-11-25: an old uws_echo on 19300 and 19320)."""
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            log(f"port {port} is taken by another process: skipping it")
            port += 1
        except OSError:
            return port


def find_uws_build_script():
    for directory in UWS_DIR_CANDIDATES:
        if os.path.exists(os.path.join(directory, "build.sh")):
            return directory
    return None


def server_commands(args, port):
    """name -> list of commands (one per process)."""
    peers = args.peers_dir
    pylon = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
             "--max-message-size", str(MAX_MESSAGE), "--log-level", "warn",
             "--max-connections", "200000", "--ping-interval", "3600", "--pong-timeout", "3600"]
    servers = {"pylon": [pylon]}
    if os.path.exists(f"{peers}/uws/uws_echo"):
        servers["uWebSockets"] = [[f"{peers}/uws/uws_echo", str(port)]]
    servers["Boost.Beast"] = [[f"{peers}/beast_echo", str(port)]]
    servers["websocketpp"] = [[f"{peers}/websocketpp_echo", str(port)]]
    servers["gorilla"] = [[f"{peers}/gorilla_echo", str(port)]]
    servers["Node ws"] = [["node", f"{peers}/ws_echo.js", str(port)]]
    servers["raw TCP"] = [[f"{peers}/raw_tcp_echo", str(port)]]
    return servers


def pylon_has_bench(pylon):
    result = subprocess.run([pylon, "bench", "--help"], capture_output=True, text=True)
    return result.returncode == 0 and "echo" in result.stdout


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


def latency_of(data):
    for key in ("latency_us", "latency", "rtt_us", "delivery_latency_us", "delivery_latency"):
        node = find_key_node(data, key)
        if isinstance(node, dict):
            return {k: node.get(k) for k in ("p50", "p90", "p99", "p999", "max") if k in node}
    return {}


def find_key_node(data, name):
    queue = [data]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if name in node:
                return node[name]
            queue.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return None


def run_client(command, timeout):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    full = ["taskset", "-c", CLIENT_CORE] + [a.replace("{json}", path) for a in command]
    result = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {"failed": True, "exit_code": result.returncode, "stderr": result.stderr[-2000:]}
    os.unlink(path)
    return data


def echo_command(args, client, server, connections, size):
    if client == "pylon":
        return [args.pylon, "bench", "echo", "--url", f"ws://127.0.0.1:{server.port}/ws/echo",
                "--connections", str(connections), "--duration", str(args.duration),
                "--warmup", str(args.warmup), "--size", str(size), "--binary", "--threads", "1",
                "--pid", str(server.pids[0]), "--json", "{json}"]
    return [f"{args.peers_dir}/echo_client", "--port", str(server.port),
            "--mode", "raw" if server.name == "raw TCP" else "ws",
            "--connections", str(connections), "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--size", str(size),
            "--pid", ",".join(map(str, server.pids)), "--json", "{json}"]


def summarize_echo(data):
    messages_per_second = find_key(data, "messages_per_second", "msgs_per_second", "throughput")
    return {
        "messages_per_second": messages_per_second,
        "server_cpu_us_per_message": find_key(data, "server_cpu_us_per_message"),
        "server_cpu_seconds": find_key(data, "server_cpu_seconds"),
        "latency_us": latency_of(data),
        "errors": find_key_node(data, "errors"),
    }


def run_echo_case(args, case, port, ws_client):
    connections, size = ECHO_CASES[case]
    results = []
    for name in server_commands(args, port):
        if args.servers and name not in args.servers:
            continue
        clients = ["echo_client"] if name == "raw TCP" else [ws_client]
        if name == "pylon" and ws_client != "echo_client":
            clients.append("echo_client")  # like for like with the raw TCP ceiling
        for client in clients:
            port = free_port(port)
            commands = server_commands(args, port)[name]
            entry = {"server": name, "client": "pylon bench" if client == "pylon" else "echo_client",
                     "server_command": commands[0]}
            try:
                with Server(name, commands, port) as server:
                    entry["loadavg_before"] = loadavg()
                    data = run_client(echo_command(args, client, server, connections, size),
                                      timeout=args.duration + args.warmup + 120)
                    entry["loadavg_after"] = loadavg()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                entry["skipped"] = one_line(error)
                results.append(entry)
                log(f"{case} {name}: {error}")
                port += 1
                continue
            entry.update(summarize_echo(data))
            entry["client_output"] = data
            results.append(entry)
            log(f"{case} {name} [{entry['client']}]: {entry['messages_per_second']} msg/s, "
                f"{entry['server_cpu_us_per_message']} us CPU/msg, load {entry['loadavg_after']}")
            port += 1
    return results


def hold_connections(args, port, connections, server, clients_needed, sources):
    """Opens `connections` idle WebSockets with echo_client --hold processes; returns them."""
    per_client = -(-connections // clients_needed)
    processes, opened = [], 0
    for index in range(clients_needed):
        count = min(per_client, connections - opened)
        opened += count
        source_list = ",".join(sources[index::clients_needed]) or "127.0.0.1"
        processes.append(subprocess.Popen(
            ["taskset", "-c", CLIENT_CORE, f"{args.peers_dir}/echo_client", "--hold",
             "--port", str(port), "--connections", str(count), "--duration", "3600",
             "--sources", source_list],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
    connected, errors = 0, {}
    for p in processes:
        line = p.stdout.readline()
        report = json.loads(line) if line.startswith("{") else {"errors": {"no_report": 1}}
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
    for name in server_commands(args, port):
        port = free_port(port)
        commands = server_commands(args, port)[name]
        if args.servers and name not in args.servers:
            continue
        if name == "raw TCP":
            continue  # no WebSocket handshake: not a memory-per-WebSocket figure
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
        commands = commands * server_processes
        try:
            with Server(name, commands, port) as server:
                entry["loadavg_before"] = loadavg()
                rss_before, kernel_before = rss_bytes(server.pids), kernel_tcp_pages()
                started = time.time()
                clients, connected, client_errors = hold_connections(args, port, connections, server,
                                                      clients_needed, sources)
                entry["connect_seconds"] = round(time.time() - started, 2)
                time.sleep(2)
                rss_after, kernel_after = rss_bytes(server.pids), kernel_tcp_pages()
                entry["loadavg_after"] = loadavg()
                for c in clients:
                    c.send_signal(signal.SIGTERM)
                for c in clients:
                    c.wait(timeout=30)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            entry["skipped"] = one_line(error)
            results.append(entry)
            log(f"{case} {name}: {error}")
            port += 1
            continue
        entry["connected"] = connected
        entry["client_errors"] = client_errors
        entry["server_rss_before_bytes"] = rss_before
        entry["server_rss_after_bytes"] = rss_after
        if connected:
            entry["server_bytes_per_connection"] = round((rss_after - rss_before) / connected, 1)
            # TCP buffer memory only (the "mem" of /proc/net/sockstat, both ends): idle sockets
            # hold none, so this stays near 0; socket structures themselves are not counted.
            entry["kernel_tcp_buffer_bytes_per_connection"] = round(
                (kernel_after - kernel_before) * 4096 / connected, 1)
        results.append(entry)
        log(f"{case} {name}: {connected} connected, "
            f"{entry.get('server_bytes_per_connection')} B/connection (server RSS)")
        port += 1
    return results


def run_fanout_case(args, case, port, ws_client):
    subscribers = FANOUT_CASES[case]
    entry = {"server": "pylon", "client": "pylon bench", "subscribers": subscribers,
             "publishers": 1, "rate": args.fanout_rate, "size": 64}
    if ws_client != "pylon":
        entry["skipped"] = "pylon bench (fanout scenario) is not in this pylon binary yet"
        return [entry]
    port = free_port(port)
    commands = server_commands(args, port)["pylon"]
    with Server("pylon", commands, port) as server:
        entry["loadavg_before"] = loadavg()
        data = run_client([args.pylon, "bench", "fanout", "--url", f"ws://127.0.0.1:{port}/ws",
                           "--subscribers", str(subscribers), "--publishers", "1",
                           "--rate", str(args.fanout_rate), "--size", "64",
                           "--duration", str(args.duration), "--warmup", str(args.warmup),
                           "--threads", "1", "--pid", str(server.pids[0]), "--json", "{json}"],
                          timeout=args.duration + args.warmup + 180)
        entry["loadavg_after"] = loadavg()
    floor = {"server": "raw TCP floor", "client": "fanout_floor", "subscribers": subscribers,
             "rate": args.fanout_rate, "size": 64, "loadavg_before": loadavg()}
    floor["client_output"] = run_client(
        [f"{args.peers_dir}/fanout_floor", "--connections", str(subscribers), "--size", "64",
         "--messages", str(max(10, int(args.duration * args.fanout_rate))),
         "--interval-ms", str(int(1000 / args.fanout_rate)), "--json", "{json}"],
        timeout=args.duration + 180)
    floor["loadavg_after"] = loadavg()
    entry["latency_us"] = latency_of(data)
    entry["last_subscriber_us"] = find_key_node(data, "last_subscriber_us") or \
        find_key_node(data, "last_subscriber") or find_key_node(data, "last_delivery_us")
    entry["delivered_per_second"] = find_key(data, "delivered_per_second", "messages_per_second")
    entry["errors"] = find_key_node(data, "errors")
    entry["client_output"] = data
    log(f"{case}: latency {entry['latency_us']}, last subscriber {entry['last_subscriber_us']}; floor "
        f"{floor['client_output']}")
    return [entry, floor]


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
        port = free_port(port)
        commands = [server_commands(args, port)["pylon"][0] + ["--compression", mode, "--max-publish-rate", "100000"]]
        common = ["--duration", str(args.duration), "--warmup", str(args.warmup), "--size", "1024",
                  "--payload", "json", "--compression", "--threads", "1", "--json", "{json}"]
        with Server("pylon", commands, port) as server:
            entry["loadavg_before"] = loadavg()
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
            entry["loadavg_after"] = loadavg()
        sent = after["uncompressed"] - before["uncompressed"]
        entry["wire_ratio"] = (after["compressed"] - before["compressed"]) / sent if sent else 1.0
        entry.update(summarize_echo(data))  # fan-out: its throughput is deliveries per second
        rss = data.get("server", {}) if isinstance(data, dict) else {}
        if rss.get("rss_after_bytes") and rss.get("rss_before_bytes"):
            entry["server_bytes_per_connection"] = (rss["rss_after_bytes"] - rss["rss_before_bytes"]) / connections
        entry["client_output"] = data
        results.append(entry)
        log(f"{case} {mode}: {entry['messages_per_second']} msg/s, {entry['server_cpu_us_per_message']} "
            f"us CPU/msg, wire {entry['wire_ratio']:.3f}")
        port += 1
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


def markdown(documents):
    """Tables for docs/benchmarks.md from the case documents of one run."""
    lines = []
    echo = [d for d in documents if d["case"] in ECHO_CASES]
    if echo:
        peers = []
        for d in echo:
            for r in d["results"]:
                if r["server"] != "pylon" and r["server"] not in peers:
                    peers.append(r["server"])
        lines.append("Server CPU per message, pylon / peer (below 1: pylon spends less CPU):\n")
        lines.append("| case | pylon µs/msg | " + " | ".join(f"/ {p}" for p in peers) + " |")
        lines.append("|---|---|" + "---|" * len(peers))
        for d in echo:
            lines.append(row(d, peers, "server_cpu_us_per_message", "pylon / peer"))
        lines.append("\nMessages per second, pylon / peer (above 1: pylon echoes more):\n")
        lines.append("| case | pylon msg/s | " + " | ".join(f"/ {p}" for p in peers) + " |")
        lines.append("|---|---|" + "---|" * len(peers))
        for d in echo:
            lines.append(row(d, peers, "messages_per_second", "pylon / peer"))
        lines.append("\nAbsolute figures (µs of server CPU per message; messages/s; client; "
                     "load average before → after):\n")
        lines.append("| case | server | client | µs CPU/msg | msg/s | p50 / p99 µs | load |")
        lines.append("|---|---|---|---|---|---|---|")
        for d in echo:
            for r in d["results"]:
                if "skipped" in r:
                    lines.append(f"| {d['case']} | {r['server']} | {r['client']} | skipped: "
                                 f"{r['skipped']} | | | |")
                    continue
                lat = r.get("latency_us") or {}
                lines.append(
                    f"| {d['case']} | {r['server']} | {r['client']} | "
                    f"{number(r.get('server_cpu_us_per_message'))} | "
                    f"{number(r.get('messages_per_second'), 0)} | "
                    f"{number(lat.get('p50'), 0)} / {number(lat.get('p99'), 0)} | "
                    f"{r.get('loadavg_before', '').split(' ')[0]} → "
                    f"{r.get('loadavg_after', '').split(' ')[0]} |")
    for d in documents:
        if d["case"] in FANOUT_CASES:
            lines.append("\nFan-out, 1 publisher → 10,000 subscribers on one pylon thread:\n")
            for r in d["results"]:
                if "skipped" in r:
                    lines.append(f"- skipped: {r['skipped']}")
                    continue
                if r["server"] == "raw TCP floor":
                    out = r.get("client_output") or {}
                    last = out.get("last_write_ms") or {}
                    lines.append(f"- the floor (`fanout_floor`: one write() per socket, no WebSocket): the "
                                 f"last socket written after p50 {number(last.get('p50'))} ms, p99 "
                                 f"{number(last.get('p99'))} ms; {number(out.get('writer_cpu_us_per_write'))} µs "
                                 f"of writer CPU per write; load {r.get('loadavg_before', '').split(' ')[0]} → "
                                 f"{r.get('loadavg_after', '').split(' ')[0]}")
                    continue
                lat = r.get("latency_us") or {}
                last = r.get("last_subscriber_us") or {}
                last = last if isinstance(last, dict) else {}
                lines.append(f"- {number(r.get('rate'), 0)} msg/s: delivery latency p50 "
                             f"{number(lat.get('p50'), 0)} µs, p99 {number(lat.get('p99'), 0)} µs; "
                             f"last subscriber p50 {number(last.get('p50'), 0)} µs, p99 "
                             f"{number(last.get('p99'), 0)} µs; "
                             f"{number(r.get('delivered_per_second'), 0)} deliveries/s; load "
                             f"{r.get('loadavg_before', '').split(' ')[0]} → "
                             f"{r.get('loadavg_after', '').split(' ')[0]}")
    for d in documents:
        if d["case"] not in DEFLATE_CASES:
            continue
        scenario, connections, rate = DEFLATE_CASES[d["case"]]
        what = (f"echo, {connections} connections × 1 KiB JSON" if scenario == "echo" else
                f"fan-out, 1 publisher → {connections} subscribers, {rate:g} msg/s of 1 KiB JSON")
        lines.append(f"\npermessage-deflate, {what} (`{d['case']}`; µs of server CPU per message "
                     f"{'echoed' if scenario == 'echo' else 'delivered'}):\n")
        lines.append("| compression | msg/s | µs CPU/msg | wire bytes / payload bytes | RSS growth per connection "
                     "| p50 / p99 µs | load |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in d["results"]:
            if "skipped" in r:
                lines.append(f"| {r['compression']} | skipped: {r['skipped']} | | | | | |")
                continue
            lat = r.get("latency_us") or {}
            lines.append(f"| {r['compression']} | {number(r.get('messages_per_second'), 0)} | "
                         f"{number(r.get('server_cpu_us_per_message'))} | {number(r.get('wire_ratio'), 3)} | "
                         f"{number(r.get('server_bytes_per_connection'), 0)} B | "
                         f"{number(lat.get('p50'), 0)} / {number(lat.get('p99'), 0)} | "
                         f"{r.get('loadavg_before', '').split(' ')[0]} → {r.get('loadavg_after', '').split(' ')[0]} |")
    idle = [d for d in documents if d["case"] in IDLE_CASES]
    if idle:
        lines.append("\nServer memory (RSS growth) per idle WebSocket:\n")
        lines.append("| case | server | connected | bytes/connection | pylon / server | note |")
        lines.append("|---|---|---|---|---|---|")
        for d in idle:
            pylon = next((r for r in d["results"] if r["server"] == "pylon"), {})
            for r in d["results"]:
                note = r.get("skipped") or r.get("note", "")
                lines.append(f"| {d['case']} | {r['server']} | {r.get('connected', '–')} | "
                             f"{number(r.get('server_bytes_per_connection'), 0)} | "
                             f"{ratio(pylon.get('server_bytes_per_connection'), r.get('server_bytes_per_connection'))} | "
                             f"{note} |")
    return "\n".join(lines) + "\n"


def row(document, peers, key, _):
    by_server = {}
    for r in document["results"]:
        if "skipped" in r:
            continue
        # pylon against raw TCP: the echo_client run; against WebSocket peers: the common client.
        by_server.setdefault((r["server"], r["client"]), r)
    pylon_ws = next((r for (s, c), r in by_server.items() if s == "pylon" and c != "echo_client"),
                    None) or by_server.get(("pylon", "echo_client"), {})
    pylon_raw = by_server.get(("pylon", "echo_client"), pylon_ws)
    cells = []
    for peer in peers:
        peer_result = next((r for (s, _), r in by_server.items() if s == peer), {})
        base = pylon_raw if peer == "raw TCP" else pylon_ws
        cells.append(ratio(base.get(key), peer_result.get(key)))
    digits = 2 if key == "server_cpu_us_per_message" else 0
    return f"| {document['case']} | {number(pylon_ws.get(key), digits)} | " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float,
                        default=float(os.environ.get("BENCH_DURATION", 10)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--cases", default=os.environ.get("BENCH_CASES", ",".join(ALL_CASES)))
    parser.add_argument("--servers", default=os.environ.get("BENCH_SERVERS", ""))
    parser.add_argument("--client", default=os.environ.get("BENCH_CLIENT", "auto"),
                        choices=["auto", "pylon", "echo_client"])
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--peers-dir", default=os.path.join(ROOT, "build", "bench-peers"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 19300)))
    parser.add_argument("--fanout-rate", type=float, default=10,
                        help="publishes per second in the fan-out case")
    parser.add_argument("--report-only", metavar="DATE",
                        help="only write the summary from bench/results/DATE-*.json")
    args = parser.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    args.servers = [s for s in args.servers.split(",") if s]
    args.pylon, args.peers_dir = os.path.abspath(args.pylon), os.path.abspath(args.peers_dir)
    date = datetime.date.today().isoformat()

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
    log(f"WebSocket load generator: {'pylon bench' if ws_client == 'pylon' else 'echo_client'}")

    common = {"date": date, "machine": machine(), "versions": versions(args.pylon),
              "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                           "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                           "messages": "binary", "ws_client":
                               "pylon bench" if ws_client == "pylon" else "echo_client"}}
    os.makedirs(RESULTS, exist_ok=True)
    documents = []
    port = args.port
    for case in args.cases:
        log(f"case {case}")
        if case in ECHO_CASES:
            results = run_echo_case(args, case, port, ws_client)
        elif case in IDLE_CASES:
            results = run_idle_case(args, case, port)
        elif case in DEFLATE_CASES:
            results = run_deflate_case(args, case, port, ws_client)
        else:
            results = run_fanout_case(args, case, port, ws_client)
        port += 20  # fresh ports: no TIME_WAIT collisions with the previous case
        document = dict(common, case=case, results=results)
        with open(os.path.join(RESULTS, f"{date}-{case}.json"), "w") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
        documents.append(document)
    summary = markdown(documents)
    # A partial run must not overwrite the day's full summary.
    name = "summary" if args.cases == ALL_CASES else "summary-" + "+".join(args.cases)
    with open(os.path.join(RESULTS, f"{date}-{name}.md"), "w") as f:
        f.write(summary)
    sys.stdout.write(summary)


if __name__ == "__main__":
    main()
