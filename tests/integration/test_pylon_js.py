"""pylon.js (clients/js, issue 15) under Node's own test runner: `node --test tests/js/` against
one real `pylon serve` started here, the one way (support.server), with what the Node tests need:
tokens (an HMAC secret), a backend API key that may publish and disconnect, a namespace with
history (`chat`), one with presence and join/leave messages (`room`), a short refresh grace and no leeway so that expiry tests take seconds. The
Node side (tests/js/support.mjs) reads the address and secrets from the environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.auth import SECRET, secret_file  # noqa: F401
from support.pubsub import api_key_args
from support.server import start_server

JS_TESTS = Path(__file__).resolve().parent.parent / "js"
API_KEY = "pylon-js-backend-key"
TIMEOUT = 300


def server_args(secret_path: str) -> list[str]:
    args = ["--threads", "2", "--auth-hmac-secret-file", secret_path, "--auth-leeway", "0",
            "--auth-refresh-grace", "1", "--max-publish-rate", "100000",
            *api_key_args(API_KEY, name="backend", scopes=("publish", "disconnect"))]
    for rule in ("chat:history_size=1000", "chat:history_ttl=300", "room:presence=true",
                 "room:join_leave=true"):
        args += ["--namespace", rule]
    return args


def test_node_suites(secret_file):
    tests = sorted(str(path) for path in JS_TESTS.glob("*_test.mjs"))
    assert tests, f"no Node tests in {JS_TESTS}"
    with start_server(*server_args(secret_file)) as server:
        env = dict(os.environ, PYLON_ADDRESS="%s:%d" % server.address, PYLON_SECRET=SECRET,
                   PYLON_API_KEY=API_KEY, NODE_PATH=os.environ.get("NODE_PATH", "/usr/share/nodejs"))
        result = subprocess.run(["node", "--test", *tests], env=env, capture_output=True, text=True,
                                timeout=TIMEOUT)
    print(result.stdout)  # the TAP report, shown with -s or -rA
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
