"""What the authentication suites share (test_auth.py with PyJWT's tokens, test_auth_node.py with
Node's, test_nginx_logs.py, the Chromium test): the HMAC secret and its file, claims with pylon's
grants, and one upgrade whose answer is read whole.

- `claims(lifetime, **extra)`, `grant(subscribe, publish, **extra)`: a payload valid from now.
- `secret_file`: a fixture (import it into the test module), the path of a file holding SECRET.
- `upgrade(server, path, headers)`: the response to one upgrade, the connection closed;
  `error_of(response)`: the reason of a refusal, from its JSON body.
"""

from __future__ import annotations

import json
import time

import pytest

from support.wsclient import HttpConnection, upgrade_headers

SECRET = "an HMAC secret of at least thirty-two bytes, for tests"
SLACK = 20.0


def claims(lifetime=600, **extra):
    now = int(time.time())
    return {"sub": "user-1", "iat": now, "exp": now + lifetime, **extra}


def grant(subscribe=(), publish=(), **extra):
    return claims(pylon={"subscribe": list(subscribe), "publish": list(publish)}, **extra)


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "secret"
    path.write_text(SECRET + "\n")  # as `echo` writes it: the newline is not the secret's
    return str(path)


def upgrade(server, path="/ws", headers=()):
    """The response to an upgrade of `path`, the connection closed."""
    conn = HttpConnection(*server.address, timeout=SLACK)
    try:
        conn.request("GET", path, upgrade_headers(None, headers))
        return conn.read_response(timeout=SLACK)
    finally:
        conn.close()


def error_of(response):
    return json.loads(response.body)["error"]
