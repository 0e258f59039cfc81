"""What every benchmark script under bench/ shares: the machine and version record, a server under
test pinned to the server core, a client pinned to the client core, CPU and memory read from
/proc, kernel memory, and the medians, tables and files of a result.

bench/run.py (the side-by-side suite) and the single-purpose scripts (auth_handshake.py,
redis_history.py, recovery.py, history_suite.py, tls*.py) import from here; run.py re-exports
these names for the scripts that import them from it.
"""
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
UWS_DIR_CANDIDATES = [os.path.join(ROOT, "..", "shared", "peers", "uwebsockets"),
                      "/work/shared/peers/uwebsockets"]
SERVER_CORE, CLIENT_CORE = "0", "1"


def log(message):
    print(f"[bench] {message}", flush=True)


def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def sh(command):
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()


def cpu_times(pids):
    """(user, system) CPU seconds of the processes so far: utime and stime of /proc/PID/stat."""
    user = system = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the command name may hold spaces
        user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
        system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
    return user, system


def cpu_seconds(pid):
    """utime + stime of one process, in seconds."""
    return sum(cpu_times([pid]))


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def kernel_tcp_pages():
    """The "mem" of /proc/net/sockstat's TCP line: pages of TCP buffers, the whole machine."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                return int(re.search(r"mem (\d+)", line).group(1))
    return 0


def kernel_memory():
    """The kernel's memory that grows with sockets, the whole machine: the slab caches from
    /proc/slabinfo (bytes per cache: objects × object size; None when unreadable) and the Slab
    line of /proc/meminfo (pages the slab allocator holds, in bytes)."""
    caches = None
    try:
        with open("/proc/slabinfo") as f:
            caches = {}
            for line in f:
                if line.startswith(("slabinfo", "#")):
                    continue
                fields = line.split()
                caches[fields[0]] = int(fields[2]) * int(fields[3])  # num_objs × objsize
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return {"slab_caches": caches, "slab_bytes": meminfo.get("Slab", 0)}


# Connections a memory measurement opens before it reads the server's "before" figures and holds
# to the end, per server process: what a server's first connections cost once (code and library
# pages faulted in, a pool's first block) is not a cost per connection.
WARM_UP_CONNECTIONS = 8


def start_holding(peers_dir, port, connections, sources="127.0.0.1"):
    """echo_client --hold on the client core: opens idle WebSockets and keeps them until SIGTERM."""
    return subprocess.Popen(
        ["taskset", "-c", CLIENT_CORE, f"{peers_dir}/echo_client", "--hold", "--port", str(port),
         "--connections", str(connections), "--duration", "3600", "--sources", sources],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def held(client):
    """The report of a start_holding() client, once every connection is open."""
    line = client.stdout.readline()
    return json.loads(line) if line.startswith("{") else {"errors": {"no_report": 1}}


def hold(peers_dir, port, connections, sources="127.0.0.1"):
    client = start_holding(peers_dir, port, connections, sources)
    return client, held(client)


def stop_clients(clients):
    for client in clients:
        client.send_signal(signal.SIGTERM)
    for client in clients:
        client.wait(timeout=30)


def kernel_growth(before, after, connections, top=8):
    """Kernel memory grown between two kernel_memory() samples, per connection, with the caches
    that grew most. Both ends of a loopback connection are on this machine: the figures cover two
    sockets, the server's and the client's."""
    growth = {"slab_bytes_per_connection": round((after["slab_bytes"] - before["slab_bytes"]) / connections, 1)}
    if before["slab_caches"] is not None and after["slab_caches"] is not None:
        deltas = {name: size - before["slab_caches"].get(name, 0)
                  for name, size in after["slab_caches"].items()}
        growth["slabinfo_bytes_per_connection"] = round(sum(deltas.values()) / connections, 1)
        growth["top_caches_bytes_per_connection"] = {
            name: round(delta / connections, 1)
            for name, delta in sorted(deltas.items(), key=lambda item: -item[1])[:top]}
    return growth


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


CPU_QUOTA_PERIOD_US = 10_000


class CpuQuota:
    """A CPU cgroup that holds its processes to `share` of one core (cgroup v2 cpu.max, or v1
    cpu.cfs_quota_us; quota per 10 ms period), removed on exit. RuntimeError where the machine
    has no writable CPU controller."""

    def __init__(self, share):
        self.share, self.path = share, None

    def __enter__(self):
        quota = int(self.share * CPU_QUOTA_PERIOD_US)
        name = f"pylon-bench-{os.getpid()}"
        v2 = "/sys/fs/cgroup"
        try:
            with open(os.path.join(v2, "cgroup.controllers")) as f:
                has_v2_cpu = "cpu" in f.read().split()
        except OSError:
            has_v2_cpu = False
        try:
            if has_v2_cpu:
                self.path = os.path.join(v2, name)
                os.mkdir(self.path)
                settings = {"cpu.max": f"{quota} {CPU_QUOTA_PERIOD_US}"}
            else:
                self.path = os.path.join(v2, "cpu", name)
                os.mkdir(self.path)
                settings = {"cpu.cfs_period_us": str(CPU_QUOTA_PERIOD_US), "cpu.cfs_quota_us": str(quota)}
            for key, value in settings.items():
                with open(os.path.join(self.path, key), "w") as f:
                    f.write(value)
        except OSError as error:
            self.__exit__()
            raise RuntimeError(f"no CPU cgroup to hold the server to {self.share} core: {error}")
        return self

    def join(self):
        """For Popen's preexec_fn: moves the new process into the cgroup before it runs."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def __exit__(self, *exc):
        if self.path is not None:
            try:
                os.rmdir(self.path)  # its processes have exited by now
            except OSError:
                pass
            self.path = None


class Server:
    """One server under test: a set of processes pinned to the server core (or `cores`), stopped
    by PID; with `cpu_share`, held to that share of a core together (CpuQuota). Their stderr goes
    to a temporary file (read when one exits early), so that a server logging a lot never blocks
    on a full pipe."""

    def __init__(self, name, commands, port, env=None, cores=SERVER_CORE, cpu_share=None):
        self.name, self.commands, self.port, self.cores = name, commands, port, cores
        # Node ws comes from Debian's node-ws, outside node's default module path.
        self.env = dict(os.environ, NODE_PATH="/usr/share/nodejs", **(env or {}))
        self.processes = []
        self.stderr = tempfile.TemporaryFile()
        self.quota = CpuQuota(cpu_share) if cpu_share else None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.__exit__()  # what did start is stopped, the cgroup removed
            raise

    def start(self):
        if self.quota:
            self.quota.__enter__()
        for command in self.commands:
            self.processes.append(subprocess.Popen(
                ["taskset", "-c", self.cores] + command, env=self.env,
                stdout=subprocess.DEVNULL, stderr=self.stderr, start_new_session=True,
                preexec_fn=self.quota.join if self.quota else None))
        deadline = time.time() + 15
        while time.time() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    self.stderr.seek(0)
                    raise RuntimeError(f"{self.name} exited: {self.stderr.read().decode()[:500]}")
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
        self.stderr.close()
        if self.quota:
            self.quota.__exit__()


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


def run_client(command, timeout, cores=CLIENT_CORE):
    """Runs a load generator pinned to the client core and returns its JSON: the temporary file
    that "{json}" in its arguments becomes, or its standard output when there is no "{json}"
    ({"failed": True, ...} when there is none). The report's per-connection "distribution" is left
    out: nothing here reads it, and it was most of every result file's size."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    full = ["taskset", "-c", cores] + [a.replace("{json}", path) for a in command]
    result = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    try:
        if "{json}" in command:
            with open(path) as f:
                data = json.load(f)
        else:
            data = json.loads(result.stdout)
    except (OSError, ValueError):
        data = {"failed": True, "exit_code": result.returncode, "stderr": result.stderr[-2000:]}
    os.unlink(path)
    if isinstance(data, dict):
        data.pop("distribution", None)
    return data


def read_upgrade(sock):
    """Reads an upgrade request's answer up to its blank line; raises unless it is a 101."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed before its 101")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return head


def median(values):
    """The median of the numbers among `values`; None when there is none."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(numbers) if numbers else None


def medians(runs, keys):
    """{key: median over the runs} for each key; None where no run has a number for it."""
    return {key: median(run.get(key) for run in runs) for key in keys}


def markdown_table(header, rows):
    """A Markdown table: `header` is a list of column titles, each row a list of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name, document, text):
    """bench/results/<date>-<name>.json (the document) and .md (the text); returns the stem."""
    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, f"{today()}-{name}")
    with open(stem + ".json", "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    with open(stem + ".md", "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return stem
