"""`make stack` from tests: run a Makefile target, read the stack's PID files, check a process."""

from __future__ import annotations

import os
import subprocess

from support.server import REPO_DIR


def make(target: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO_DIR), target],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def recorded_pids(state) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state / "run").glob("*.pid") if p.read_text().strip()}


def running(pid: int) -> bool:
    """Alive and not a zombie (a finished child nobody reaped yet counts as stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
