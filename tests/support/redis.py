"""A real `redis-server` for the cluster suites: started on a free 127.0.0.1 port with no
persistence (or an append-only file in a directory of the test's, fsynced at every write, for the
restart-with-AOF tests), stopped by PID, restartable on the same port (the outage tests), plus the few
`redis-cli` queries the tests assert on (PUBSUB NUMSUB / CHANNELS)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from typing import Iterator, Optional

import pytest

from .server import free_port


def require_redis() -> None:
    """Fails (never skips silently) when the Debian packages are missing."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run scripts/deps.sh (packages redis-server, redis-tools)",
                        pytrace=False)


class RedisServer:
    def __init__(self, port: Optional[int] = None, aof_dir: Optional[str] = None):
        require_redis()
        self.port = port or free_port()
        self.aof_dir = aof_dir
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always", "--dir", self.aof_dir]
                       if self.aof_dir else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--daemonize", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.02)  # polling interval
        raise RuntimeError("redis-server did not answer PING")

    def kill(self) -> None:
        """SIGKILL by PID: Redis vanishes as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def cli(self, *args: str) -> Optional[str]:
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        return result.stdout.strip() if result.returncode == 0 else None

    def numsub(self, channel: str) -> int:
        """Subscribers Redis counts for channel: one per pylon instance with local interest."""
        out = self.cli("PUBSUB", "NUMSUB", channel)
        lines = (out or "").splitlines()
        return int(lines[1]) if len(lines) == 2 else -1

    def channels(self, pattern: str) -> list[str]:
        out = self.cli("PUBSUB", "CHANNELS", pattern)
        return sorted(line for line in (out or "").splitlines() if line)


@contextlib.contextmanager
def start_redis(port: Optional[int] = None, aof_dir: Optional[str] = None) -> Iterator[RedisServer]:
    redis = RedisServer(port, aof_dir)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Polls `condition` until it is true; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)  # polling interval
    assert condition(), f"timed out after {timeout}s waiting for {what}"
