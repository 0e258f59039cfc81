"""The one way to start a test server.

`start_server(*extra_args)` picks a free port on 127.0.0.1, runs
`$PYLON_BIN serve --listen 127.0.0.1:PORT *extra_args`, polls `GET /healthz` until it answers
200, yields a `Server`, and stops it by PID (SIGTERM, then SIGKILL after a timeout). Its stdout
and stderr go to files whose tails conftest.py attaches to the report of a failing test.

`PYLON_IO_BACKEND=epoll` adds `--io-backend epoll` to every server started this way that does not
choose a backend itself (the `epoll_suites` CTest entry runs a representative set of suites so;
the default backend is io_uring).

`PYLON_TEST_URL=HOST:PORT` makes `start_server()` without extra arguments use a server that is
already running (e.g. a known-good peer while pylon is being written); tests that need flags are
skipped then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import pytest

from support.wsclient import TlsAddress

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = TESTS_DIR.parent

# Generous everywhere: the ASan build is several times slower than the release one.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 45.0

# Servers started by this process and not yet stopped, and those stopped since the current test
# began: conftest.py shows their output when a test fails.
live_servers: list["Server"] = []
stopped_servers: list["Server"] = []


def pylon_bin() -> str:
    path = os.environ.get("PYLON_BIN") or str(REPO_DIR / "build" / "pylon")
    if not os.access(path, os.X_OK):
        pytest.fail(f"pylon binary not found: set PYLON_BIN (tried {path})", pytrace=False)
    return path


def external_address() -> Optional[tuple[str, int]]:
    value = os.environ.get("PYLON_TEST_URL")
    if not value:
        return None
    value = value.split("://")[-1].split("/")[0]
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all bound at once while choosing, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_get_status(host: str, port: int, path: str, timeout: float = 2.0) -> Optional[int]:
    """Status code of one `GET path` on a fresh connection, or None if it could not be had."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            parts = data.split(b" ", 2)
            return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except OSError:
        return None


class Server:
    """A running server process (or an external one, with `proc` None)."""

    def __init__(self, argv: Sequence[str], host: str, port: int, proc: Optional[subprocess.Popen],
                 log_dir: Optional[Path]):
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.proc = proc
        self.log_dir = log_dir
        self.returncode: Optional[int] = None
        # A TLS listener's client context (support.tls sets it): `address` then carries it.
        self.ssl_context: Optional[ssl.SSLContext] = None

    @property
    def address(self) -> tuple[str, int]:
        if self.ssl_context is not None:
            return TlsAddress((self.host, self.port), self.ssl_context)
        return self.host, self.port

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def url(self, path: str = "/ws/echo") -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}{path}"

    def output(self, limit: int = 20000) -> str:
        if not self.log_dir:
            return "(external server: no output captured)"
        parts = [f"$ {' '.join(self.argv)}"]
        for name in ("stdout", "stderr"):
            path = self.log_dir / name
            text = path.read_bytes().decode(errors="replace") if path.exists() else ""
            if len(text) > limit:
                text = "...\n" + text[-limit:]
            parts.append(f"--- {name} ---\n{text}")
        if self.returncode is not None:
            parts.append(f"--- exit code {self.returncode} ---")
        return "\n".join(parts)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        """Waits for the process to exit; returns its exit code (raises TimeoutExpired)."""
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if external)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        self.returncode = self.proc.returncode
        return self.returncode


def _wait_ready(server: Server, ready: Callable[[Server], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if not server.running():
            server.stop()
            raise RuntimeError(f"server exited before it was ready\n{server.output()}")
        if ready(server):
            return
        time.sleep(delay)  # polling interval, not a wait for an event we could observe
        delay = min(delay * 2, 0.2)
    server.stop(timeout=5)
    raise RuntimeError(f"server not ready after {timeout}s\n{server.output()}")


def healthz_ready(server: Server) -> bool:
    return http_get_status(server.host, server.port, "/healthz") == 200


@contextlib.contextmanager
def start_process(argv: Sequence[str], port: int, ready: Callable[[Server], bool] = healthz_ready,
                  host: str = "127.0.0.1", env: Optional[dict] = None,
                  stop_timeout: float = STOP_TIMEOUT) -> Iterator[Server]:
    """Runs `argv` (which must listen on host:port), waits until `ready`, yields, stops by PID."""
    log_dir = Path(tempfile.mkdtemp(prefix="pylon-test-"))
    with open(log_dir / "stdout", "wb") as out, open(log_dir / "stderr", "wb") as err:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)
    server = Server(argv, host, port, proc, log_dir)
    live_servers.append(server)
    try:
        _wait_ready(server, ready, START_TIMEOUT)
        yield server
    finally:
        server.stop(timeout=stop_timeout)
        live_servers.remove(server)
        stopped_servers.append(server)


@contextlib.contextmanager
def start_server(*extra_args: str, port: Optional[int] = None, listen: bool = True,
                 ready: Callable[[Server], bool] = healthz_ready,
                 stop_timeout: float = STOP_TIMEOUT, env: Optional[dict] = None) -> Iterator[Server]:
    """Starts `pylon serve --listen 127.0.0.1:PORT *extra_args` (see the module docstring).

    `listen=False` leaves --listen out (the address then comes from a config file in
    `extra_args`; pass its `port`). `env`: variables added to this process's environment."""
    external = external_address()
    if external is not None:
        if extra_args or not listen:
            pytest.skip("needs a pylon started with flags (PYLON_TEST_URL is set)")
        server = Server(["(external)"], external[0], external[1], None, None)
        yield server
        return
    binary = pylon_bin()
    for attempt in range(3):
        chosen = port or free_port()
        argv = [binary, "serve"]
        if listen:
            argv += ["--listen", f"127.0.0.1:{chosen}"]
        argv += list(extra_args)
        backend = os.environ.get("PYLON_IO_BACKEND")
        if backend and "--io-backend" not in extra_args:  # a test that chose one keeps it
            argv += ["--io-backend", backend]
        try:
            ctx = start_process(argv, chosen, ready=ready, stop_timeout=stop_timeout,
                                env={**os.environ, **env} if env else None)
            server = ctx.__enter__()
        except RuntimeError as error:
            # Another process may have taken the free port in between: try another one.
            if attempt == 2 or port is not None or "in use" not in str(error).lower():
                raise
            continue
        try:
            yield server
        finally:
            ctx.__exit__(None, None, None)
        return


def run_pylon(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs a short-lived `pylon ARGS` (version, check-config, a serve that must fail)."""
    return subprocess.run([pylon_bin(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, text=True)


def poll(condition: Callable[[], object], timeout: float, what: str):
    """Calls condition() until it returns a true value and returns it; fails the test after
    `timeout` seconds naming `what`. The one way tests wait for something they can observe."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)  # polling interval
        delay = min(delay * 2, 0.2)
