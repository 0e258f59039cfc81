#!/usr/bin/python3
"""TLS side by side, in one run (issue 16; docs/benchmarks.md "Native TLS"):

    /usr/bin/python3 bench/tls.py [--parts echo,handshake,idle] [--duration S] [--warmup S]
                                  [--connections N] [--idle N] [--rounds N] [--label NAME]
(--duration, --warmup and --rounds default to BENCH_DURATION, BENCH_WARMUP and BENCH_ROUNDS,
as bench/run.py's do; one round unless BENCH_ROUNDS is set.)

Servers, each pinned to core 0 (taskset) with one loop thread or process; every client pinned to
core 1:
  pylon ws              `pylon serve`, plain: the reference of the pylon rows
  pylon wss             native TLS, tls_ktls false
  pylon wss kTLS        native TLS, tls_ktls true; whether the kernel took the records is read
                        from pylon_tls_connections{ktls="true"} with a connection open
  uWS ws / uWS wss      uWebSockets (bench/peers/build.sh: uws_echo, uws_tls_echo on uSockets
                        with OpenSSL); "uWS wss low-memory" is uws_tls_echo with uWS's
                        ssl_prefer_low_memory_usage (SSL_MODE_RELEASE_BUFFERS, as pylon sets)
  Nginx wss → pylon ws  the deploy kit's Nginx (deploy/nginx/render.sh, with worker_processes 1)
                        terminating TLS in front of a plain pylon: Nginx's master and worker
                        CPU (and RSS) counted with pylon's
Parts:
  echo       `pylon bench echo` (the one client for every server), 16-byte binary messages with
             1 and 8 in flight per connection: messages/s, server CPU per message (utime +
             stime of every server process over the measured window, `--pid`), the system-time
             share of the server's CPU over the whole client run, and TLS / plain per server.
  handshake  a closed loop of TCP connect + TLS handshake + WebSocket upgrade + close, from 4
             client processes (Python's ssl: full handshakes, or resuming the last session's
             ticket): server CPU per handshake over the loop and handshakes/s. The client core
             is the limit here, so the per-core capacity is 1 s ÷ server CPU per handshake.
  idle       RSS growth of the server processes per idle connection over N connections held by
             Python websockets (after 200 warm-up connections that stay open).
With --rounds N every part runs N times, the servers' order rotated from round to round (the
load of this shared machine drifts), and the tables show medians.
Results: bench/results/<UTC date>-tls[-LABEL]-{echo,handshake,idle}.json (every round) and the
tables in <UTC date>-tls[-LABEL]-summary.md. Certificates: a fresh deploy/tls/local-ca.sh (ECDSA P-256).
"""
import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CLIENT_CORE, RESULTS, ROOT, Server, cpu_times, free_port, loadavg, log,  # noqa: E402
                      machine, median, read_upgrade, rss_bytes, run_client, today, versions)
from run import (UWS, echo_command, number, one_line, pylon_command, ratio,  # noqa: E402
                 server_commands, summarize_echo)

PARTS = ("echo", "handshake", "idle")
MESSAGE_SIZE = 16
HANDSHAKE_CLIENTS = 4
WARM_CONNECTIONS = 200
UPGRADE = (b"GET /ws/echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
# RFC 6455 §5.5.1: a close frame with code 1000, masked as a client must (mask 0x01020304).
CLOSE_FRAME = bytes([0x88, 0x82, 1, 2, 3, 4]) + bytes(
    b ^ m for b, m in zip(struct.pack("!H", 1000), (1, 2)))


class Target:
    """One server set-up. `plain`: the name of the row its TLS / plain ratio divides by."""

    def __init__(self, name, tls, plain=None, ktls=False):
        self.name, self.tls, self.plain, self.ktls = name, tls, plain, ktls


TARGETS = [
    Target("pylon ws", False),
    Target("pylon wss", True, plain="pylon ws"),
    Target("pylon wss kTLS", True, plain="pylon ws", ktls=True),
    Target("uWS ws", False),
    Target("uWS wss", True, plain="uWS ws"),
    Target("uWS wss low-memory", True, plain="uWS ws"),
    Target("Nginx wss → pylon ws", True, plain="pylon ws"),
]
# Handshakes: kTLS changes nothing before the handshake ends, RELEASE_BUFFERS little.
HANDSHAKE_TARGETS = ("pylon ws", "pylon wss", "uWS ws", "uWS wss", "Nginx wss → pylon ws")


class Running:
    """A started target: the port clients use and every process whose CPU and RSS count;
    `parts`: for Nginx in front of pylon, the processes of each (name -> pids)."""

    def __init__(self, port, pids, metrics_port=None, parts=None):
        self.port, self.pids, self.metrics_port = port, pids, metrics_port
        self.parts = parts or {}

    def cpu(self):
        """(user, system) seconds of every process, and the total of each part."""
        return cpu_times(self.pids), {name: sum(cpu_times(pids)) for name, pids in self.parts.items()}


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def render_nginx(directory, tls_dir, pylon_port, https_port, http_port):
    """deploy/nginx/render.sh with private paths (as tests/support/nginx.py renders it), then one
    worker process: one core for the whole server side, like `pylon serve --threads 1`."""
    for sub in ("logs", "tmp", "acme"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    values = {
        "PYLON_DOMAINS": "localhost 127.0.0.1", "PYLON_UPSTREAMS": f"127.0.0.1:{pylon_port}",
        "NGINX_HTTP_LISTEN": f"127.0.0.1:{http_port}", "NGINX_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "TLS_CERTIFICATE": f"{tls_dir}/server.pem", "TLS_CERTIFICATE_KEY": f"{tls_dir}/server.key",
        "TLS_TRUSTED_CERTIFICATE": f"{tls_dir}/ca.pem", "ACME_WEBROOT": f"{directory}/acme",
        "NGINX_USER": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
        "NGINX_PID": f"{directory}/nginx.pid", "NGINX_ERROR_LOG": f"{directory}/logs/error.log",
        "NGINX_ACCESS_LOG": f"{directory}/logs/access.log", "NGINX_TEMP_DIR": f"{directory}/tmp",
        "NGINX_RLIMIT_NOFILE": "20000", "NGINX_WORKER_CONNECTIONS": "16384",
    }
    conf = os.path.join(directory, "conf")
    subprocess.run([os.path.join(ROOT, "deploy", "nginx", "render.sh"), conf], check=True,
                   env=dict(os.environ, **values), capture_output=True)
    path = os.path.join(conf, "nginx.conf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("worker_processes auto;", "worker_processes 1;"))
    return ["nginx", "-p", directory, "-e", f"{directory}/logs/error.log", "-c", path,
            "-g", "daemon off;"]


@contextlib.contextmanager
def start(args, target, port):
    """Starts `target` on a free port at or above `port`; yields a Running."""
    port = free_port(port)
    pylon = pylon_command(args, port)
    tls_files = ["--tls-cert", f"{args.tls_dir}/server.pem", "--tls-key", f"{args.tls_dir}/server.key"]
    if target.name.startswith("pylon"):
        metrics_port = None
        if target.tls:
            metrics_port = free_port(port + 1)
            pylon = pylon + tls_files + ["--tls-ktls", "true" if target.ktls else "false",
                                         "--metrics-listen", f"127.0.0.1:{metrics_port}"]
        with Server(target.name, [pylon], port) as server:
            yield Running(port, server.pids, metrics_port)
    elif target.name.startswith("uWS"):
        if target.tls:
            command = [f"{args.peers_dir}/uws-openssl/uws_tls_echo", str(port),
                       f"{args.tls_dir}/server.pem", f"{args.tls_dir}/server.key"]
            if target.name.endswith("low-memory"):
                command.append("low-memory")
        else:
            plain = server_commands(args, port).get(UWS)
            if not plain:
                raise RuntimeError("no uws_echo: bench/peers/build.sh found no uWebSockets")
            command = plain[0]
        with Server(target.name, [command], port) as server:
            yield Running(port, server.pids)
    else:
        https_port = free_port(port + 1)
        http_port = free_port(https_port + 1)
        with tempfile.TemporaryDirectory(prefix="pylon-tls-bench-") as directory, \
                Server("pylon", [pylon], port) as upstream:
            nginx = render_nginx(directory, args.tls_dir, port, https_port, http_port)
            with Server("Nginx", [nginx], https_port) as proxy:
                nginx_pids = proxy.pids + children_of(proxy.pids[0])
                yield Running(https_port, nginx_pids + upstream.pids,
                              parts={"Nginx": nginx_pids, "pylon": upstream.pids})


def client_context(tls_dir):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=f"{tls_dir}/ca.pem")
    return context


def open_websocket(port, context, session=None):
    """A blocking WebSocket on /ws/echo after its 101 (TLS when `context` is given)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as browsers do
    if context:
        sock = context.wrap_socket(sock, server_hostname="localhost", session=session)
    sock.sendall(UPGRADE)
    read_upgrade(sock)
    return sock


def close_websocket(sock):
    """Sends close 1000, then reads the server's close frame until its FIN: the server closes the
    TCP connection first (RFC 6455 §7.1.1), so TIME_WAIT stays on its side, not on the client's
    ephemeral ports."""
    sock.sendall(CLOSE_FRAME)
    try:
        while sock.recv(4096):
            pass
    except (OSError, ssl.SSLError):
        pass
    sock.close()


def cpu_shares(before, after):
    """The server's user and system seconds between two Running.cpu() samples, the system share,
    and each part's share of the total."""
    (user, system), parts = before
    (user_after, system_after), parts_after = after
    spent = (user_after - user) + (system_after - system)
    shares = {"server_user_seconds": user_after - user, "server_system_seconds": system_after - system,
              "server_system_share": (system_after - system) / spent if spent else None}
    if parts and spent:
        shares["cpu_share_by_process"] = {name: (parts_after[name] - parts[name]) / spent
                                          for name in parts}
    return shares


def ktls_connections(running, tls_dir):
    """pylon_tls_connections by its ktls label, read with one wss:// connection open."""
    sock = open_websocket(running.port, client_context(tls_dir))
    try:
        with socket.create_connection(("127.0.0.1", running.metrics_port), timeout=10) as http:
            http.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            text = b""
            while chunk := http.recv(65536):
                text += chunk
    finally:
        close_websocket(sock)
    return {label: float(value) for label, value in
            re.findall(r'^pylon_tls_connections\{ktls="(\w+)"\} (\S+)$', text.decode(), re.M)}


def set_option(command, option, value):
    """Gives `option` of a `pylon bench` command line (from run.py's echo_command) this value."""
    if option in command:
        command[command.index(option) + 1] = value
    else:
        command += [option, value]


def measured(args, target, port, entry, measure):
    """Starts `target` and returns `measure(running)`, with the load average before and after in
    `entry`; None when the server or the measurement failed (then `entry` says why)."""
    try:
        with start(args, target, port) as running:
            entry["loadavg_before"] = loadavg()
            outcome = measure(running)
            entry["loadavg_after"] = loadavg()
            return outcome
    except (RuntimeError, OSError, subprocess.TimeoutExpired, queue.Empty) as error:
        entry["skipped"] = one_line(error)
        log(f"{target.name}: {error}")
        return None


def run_echo(args, target, port):
    results = []
    for in_flight in args.in_flight:
        entry = {"server": target.name, "in_flight": in_flight, "connections": args.connections,
                 "size": MESSAGE_SIZE}

        def echo(running):
            if target.ktls:
                gauge = ktls_connections(running, args.tls_dir)
                entry["pylon_tls_connections"] = gauge
                entry["ktls"] = ("in use" if gauge.get("true") else
                                 "kTLS unavailable: fell back to OpenSSL's record layer")
            scheme = "wss" if target.tls else "ws"
            command = echo_command(args, "pylon", running, args.connections, MESSAGE_SIZE)
            set_option(command, "--url", f"{scheme}://127.0.0.1:{running.port}/ws/echo")
            set_option(command, "--pid", ",".join(map(str, running.pids)))
            set_option(command, "--in-flight", str(in_flight))
            if target.tls:
                set_option(command, "--ca-file", f"{args.tls_dir}/ca.pem")
            entry["client_command"] = command
            before = running.cpu()
            data = run_client(command, timeout=args.duration + args.warmup + 120)
            return data, before, running.cpu()

        results.append(entry)
        outcome = measured(args, target, port, entry, echo)
        if outcome:
            data, before, after = outcome
            entry.update(summarize_echo(data))
            entry.update(cpu_shares(before, after))
            entry["client_output"] = data
            log(f"echo {target.name}, {in_flight} in flight: "
                f"{number(entry['messages_per_second'], 0)} msg/s, "
                f"{number(entry['server_cpu_us_per_message'])} µs CPU/msg")
    return results


def handshake_client(port, tls_dir, resume, seconds, reports):
    context = client_context(tls_dir) if tls_dir else None
    session, done, resumed, failed = None, 0, 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock = open_websocket(port, context, session)
        except (OSError, ssl.SSLError, ConnectionError):
            failed += 1
            continue
        if context:
            resumed += sock.session_reused
            if resume:
                session = sock.session  # TLS 1.3: the ticket came before the 101
        close_websocket(sock)
        done += 1
    reports.put((done, resumed, failed))


def run_handshake(args, target, port):
    results = []
    for resume in ((False, True) if target.tls else (False,)):
        entry = {"server": target.name, "handshake": "resumed" if resume else "full",
                 "client_processes": HANDSHAKE_CLIENTS}

        def loop(running):
            reports = multiprocessing.Queue()
            clients = [multiprocessing.Process(
                target=handshake_client,
                args=(running.port, args.tls_dir if target.tls else None, resume,
                      args.handshake_seconds, reports)) for _ in range(HANDSHAKE_CLIENTS)]
            before = running.cpu()
            started = time.monotonic()
            for client in clients:
                client.start()
            counts = [reports.get(timeout=args.handshake_seconds + 60) for _ in clients]
            elapsed = time.monotonic() - started
            after = running.cpu()
            for client in clients:
                client.join()
            return counts, elapsed, before, after

        results.append(entry)
        outcome = measured(args, target, port, entry, loop)
        if not outcome:
            continue
        counts, elapsed, before, after = outcome
        done = sum(c[0] for c in counts)
        entry.update({"connections": done, "resumed": sum(c[1] for c in counts),
                      "failed": sum(c[2] for c in counts), "seconds": round(elapsed, 3),
                      "per_second": done / elapsed})
        entry.update(cpu_shares(before, after))
        spent = entry["server_user_seconds"] + entry["server_system_seconds"]
        if done:
            entry["server_cpu_us_per_connection"] = spent * 1e6 / done
            entry["per_core_capacity"] = done / spent if spent else None
        log(f"handshake {target.name} {entry['handshake']}: {done} in {elapsed:.1f} s "
            f"({entry['resumed']} resumed, {entry['failed']} failed), "
            f"{number(entry.get('server_cpu_us_per_connection'), 1)} µs server CPU each")
    return results


async def hold(port, context, count):
    import websockets  # python3-websockets

    scheme = "wss" if context else "ws"
    limit = asyncio.Semaphore(100)

    async def one():
        async with limit:
            return await websockets.connect(f"{scheme}://localhost:{port}/ws/echo", ssl=context,
                                            ping_interval=None, open_timeout=60, max_size=None)
    return await asyncio.gather(*(one() for _ in range(count)))


def run_idle(args, target, port):
    entry = {"server": target.name, "connections": args.idle, "warm_connections": WARM_CONNECTIONS}
    context = client_context(args.tls_dir) if target.tls else None

    async def measure(running):
        warm = await hold(running.port, context, WARM_CONNECTIONS)
        before = rss_bytes(running.pids)
        held = await hold(running.port, context, args.idle)
        for connection in held[:50]:  # they echo: every one is past its handshake
            await connection.send(b"x" * MESSAGE_SIZE)
            await connection.recv()
        await asyncio.sleep(1)
        after = rss_bytes(running.pids)
        for connection in held + warm:
            connection.transport.abort()
        return before, after

    outcome = measured(args, target, port, entry, lambda running: asyncio.run(measure(running)))
    if not outcome:
        return [entry]
    before, after = outcome
    entry.update({"server_rss_before_bytes": before, "server_rss_after_bytes": after,
                  "server_bytes_per_connection": (after - before) / args.idle})
    log(f"idle {target.name}: {number(entry['server_bytes_per_connection'], 0)} B per connection")
    return [entry]


# Figures of a result that the tables show as the median over the rounds.
MEDIAN_FIELDS = ("messages_per_second", "server_cpu_us_per_message", "server_system_share",
                 "per_second", "resumed", "failed", "server_cpu_us_per_connection",
                 "per_core_capacity", "server_bytes_per_connection")


def medians(rows, group):
    """One row per server and value of the field `group`: the median of each figure over the
    rounds that ran, the range of the 1-minute load average around them, the ktls note."""
    runs_of = {}
    for r in rows:
        runs_of.setdefault((r["server"], r[group]), []).append(r)
    merged = []
    for (server, value), runs in runs_of.items():
        done = [r for r in runs if "skipped" not in r]
        row = {"server": server, group: value, "rounds": len(done)}
        merged.append(row)
        if not done:
            row["skipped"] = runs[0]["skipped"]
            continue
        for field in MEDIAN_FIELDS:
            if (value := median(r.get(field) for r in done)) is not None:
                row[field] = value
        row["latency_us"] = {p: median((r.get("latency_us") or {}).get(p) for r in done)
                             for p in ("p50", "p99")}
        if shares := [r["cpu_share_by_process"] for r in done if r.get("cpu_share_by_process")]:
            row["cpu_share_by_process"] = {name: median(s[name] for s in shares) for name in shares[0]}
        for r in done:
            if "ktls" in r:
                row["ktls"], row["pylon_tls_connections"] = r["ktls"], r["pylon_tls_connections"]
        loads = [float(r[k].split()[0]) for r in done for k in ("loadavg_before", "loadavg_after")]
        row["load"] = f"{min(loads):.1f}–{max(loads):.1f}"
    return merged


def split_lines(rows, describe):
    """One line per row whose CPU is split between processes (Nginx in front of pylon)."""
    lines = []
    for r in rows:
        if r.get("cpu_share_by_process"):
            split = ", ".join(f"{name} {share:.0%}" for name, share in r["cpu_share_by_process"].items())
            lines.append(f"- {r['server']}, {describe(r)}: {split} of the server CPU")
    return lines


def table(intro, columns, rows, cells):
    """Markdown: `intro`, then one row per result: its server, then `cells(row)` under `columns`
    (a skipped result says why instead)."""
    lines = ["", intro, "", "| server | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        values = ([f"skipped: {r['skipped']}"] + [""] * (len(columns) - 1) if "skipped" in r
                  else cells(r))
        lines.append(f"| {r['server']} | " + " | ".join(values) + " |")
    return lines


def markdown(documents):
    lines = []
    groups = {"echo": "in_flight", "handshake": "handshake", "idle": "connections"}
    by_part = {d["part"]: medians(d["results"], groups[d["part"]]) for d in documents}
    rounds = max((r["rounds"] for rows in by_part.values() for r in rows), default=0)
    lines.append(f"Medians of {rounds} round(s), the servers' order rotated from round to round; "
                 "load: the range of the 1-minute load average around them.")
    plain_of = {t.name: t.plain for t in TARGETS}

    def reference(rows, row, match=lambda plain: "skipped" not in plain):
        return next((r for r in rows if r["server"] == plain_of.get(row["server"]) and match(r)), {})

    def echo_cells(r):
        plain = reference(by_part["echo"], r, lambda p: p["in_flight"] == r["in_flight"])
        latency = r.get("latency_us") or {}
        share = r.get("server_system_share")
        return [str(r["in_flight"]), number(r.get("messages_per_second"), 0),
                number(r.get("server_cpu_us_per_message")), "–" if share is None else f"{share:.0%}",
                ratio(r.get("messages_per_second"), plain.get("messages_per_second")),
                ratio(r.get("server_cpu_us_per_message"), plain.get("server_cpu_us_per_message")),
                f"{number(latency.get('p50'), 0)} / {number(latency.get('p99'), 0)}", r["load"]]

    def handshake_cells(r):
        plain = reference(by_part["handshake"], r)
        return [r["handshake"], number(r.get("per_second"), 0), number(r.get("resumed"), 0),
                number(r.get("failed"), 0), number(r.get("server_cpu_us_per_connection"), 1),
                number(r.get("per_core_capacity"), 0),
                ratio(r.get("server_cpu_us_per_connection"), plain.get("server_cpu_us_per_connection")),
                r["load"]]

    def idle_cells(r):
        plain = reference(by_part["idle"], r)
        extra = (r["server_bytes_per_connection"] - plain["server_bytes_per_connection"]
                 if plain else None)
        return [str(r["connections"]), number(r["server_bytes_per_connection"], 0), number(extra, 0),
                r["load"]]

    if "echo" in by_part:
        rows = by_part["echo"]
        lines += table(f"Echo, {MESSAGE_SIZE}-byte binary messages, `pylon bench echo` (server CPU per "
                       "message over the measured window; system share over the whole client run; "
                       "TLS / plain: the server's own plain row, Nginx's: pylon ws):",
                       ["in flight", "msg/s", "µs CPU/msg", "system share", "msg/s TLS / plain",
                        "CPU TLS / plain", "p50 / p99 µs", "load"], rows, echo_cells)
        notes = split_lines(rows, lambda r: f"{r['in_flight']} in flight") + [
            f"- {r['server']}, {r['in_flight']} in flight: {r['ktls']} "
            f"(pylon_tls_connections {r['pylon_tls_connections']})" for r in rows if "ktls" in r]
        lines += ["", *notes] if notes else []
    if "handshake" in by_part:
        rows = by_part["handshake"]
        lines += table("Connections: TCP connect + TLS handshake + WebSocket upgrade + close, "
                       f"{HANDSHAKE_CLIENTS} client processes in a closed loop (the client core is the "
                       "limit of connections/s; per-core capacity = 1 s ÷ server CPU per connection):",
                       ["handshake", "connections/s", "resumed", "failed", "µs server CPU each",
                        "per core capacity /s", "CPU / plain", "load"], rows, handshake_cells)
        notes = split_lines(rows, lambda r: f"{r['handshake']} handshakes")
        lines += ["", *notes] if notes else []
    if "idle" in by_part:
        lines += table("Idle memory: RSS growth of the server processes per connection (after "
                       f"{WARM_CONNECTIONS} warm-up connections):",
                       ["connections", "bytes/connection", "beyond plain", "load"], by_part["idle"],
                       idle_cells)
    return "\n".join(lines).lstrip("\n") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--servers", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 5)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--in-flight", default="1,8")
    parser.add_argument("--handshake-seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=3000, help="idle connections held")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 1)),
                        help="repeat each part, rotating the servers' order; tables show medians")
    parser.add_argument("--label", default="", help="added to the result file names")
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--peers-dir", default=os.path.join(ROOT, "build", "bench-peers"))
    parser.add_argument("--port", type=int, default=19600)
    args = parser.parse_args()
    args.in_flight = [int(n) for n in args.in_flight.split(",")]
    args.pylon, args.peers_dir = os.path.abspath(args.pylon), os.path.abspath(args.peers_dir)
    parts = [p for p in args.parts.split(",") if p]
    wanted = [s for s in args.servers.split(",") if s]
    if unknown := [p for p in parts if p not in PARTS]:
        parser.error(f"unknown parts {unknown}; known: {PARTS}")
    if unknown := [s for s in wanted if s not in {t.name for t in TARGETS}]:
        parser.error(f"unknown servers {unknown}; known: {[t.name for t in TARGETS]}")
    if not os.path.exists(args.pylon):
        parser.error(f"{args.pylon} is missing: make build first")
    subprocess.run([os.path.join(ROOT, "bench", "peers", "build.sh"), args.peers_dir], check=True)
    os.sched_setaffinity(0, {int(CLIENT_CORE)})  # the clients below run in this process
    args.pylon_log_level, args.io_backend = "warn", False  # what run.py's commands need of its args
    date = today()
    prefix = f"{date}-tls" + (f"-{args.label}" if args.label else "")

    common = {"date": date, "machine": machine(), "versions": versions(args.pylon),
              "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                           "connections": args.connections, "message_size": MESSAGE_SIZE,
                           "server_core": "0", "client_core": CLIENT_CORE,
                           "certificate": "ECDSA P-256, deploy/tls/local-ca.sh"}}
    common["versions"]["openssl"] = ssl.OPENSSL_VERSION
    common["versions"]["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True,
                                                 text=True).stderr.strip()
    common["kernel_tls_module"] = os.path.exists("/proc/net/tls_stat")
    runners = {"echo": run_echo, "handshake": run_handshake, "idle": run_idle}
    documents = []
    with tempfile.TemporaryDirectory(prefix="pylon-tls-ca-") as tls_dir:
        subprocess.run([os.path.join(ROOT, "deploy", "tls", "local-ca.sh"), tls_dir], check=True,
                       capture_output=True)
        args.tls_dir = tls_dir
        port = args.port
        for part in parts:
            log(f"part {part}")
            targets = [t for t in TARGETS if (not wanted or t.name in wanted) and
                       (part != "handshake" or t.name in HANDSHAKE_TARGETS)]
            results = []
            for round_ in range(args.rounds):
                # Rotated: the machine's load drifts, and no server should always come first.
                shift = round_ % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    for entry in runners[part](args, target, port):
                        results.append(dict(entry, round=round_ + 1))
                    port += 10  # fresh ports: no TIME_WAIT collisions with the previous server
            document = dict(common, part=part, results=results)
            with open(os.path.join(RESULTS, f"{prefix}-{part}.json"), "w") as f:
                json.dump(document, f, indent=2, ensure_ascii=False)
                f.write("\n")
            documents.append(document)
    summary = markdown(documents)
    with open(os.path.join(RESULTS, f"{prefix}-summary.md"), "w") as f:
        f.write(summary)
    sys.stdout.write(summary)


if __name__ == "__main__":
    main()
