"""The shipped Nginx configuration keeps connection tokens out of its access log (issue 13): a real
Nginx (deploy/nginx, rendered by render.sh) in front of a real `pylon serve` that requires tokens.
Upgrades carry `?token=JWT` the way browsers send it; each is logged with its status, its path and
the rest of its query, the token's value replaced by [redacted], over HTTPS and on the plain-HTTP
redirect alike. `make stack` renders the same template (deploy/local/stack.sh)."""

from __future__ import annotations

import asyncio
import re

import jwt
import pytest
import websockets

from support.auth import SECRET, SLACK, grant, secret_file  # noqa: F401
from support.nginx import local_ca, render, start_nginx, tls_context, wss_connect
from support.server import poll, start_server
from support.wsclient import http_request


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, secret_file):
    tls = local_ca(tmp_path_factory.mktemp("tls"))
    with start_server("--auth-hmac-secret-file", secret_file) as pylon:
        config = render(tmp_path_factory.mktemp("nginx"), [pylon.address], tls)
        with start_nginx(config) as running:
            yield running


def token(sub: str) -> str:
    return jwt.encode(grant(["logs:*"], sub=sub), SECRET, algorithm="HS256")


def log_line(nginx, marker: str) -> str:
    """The access log line of the request whose target contains `marker` (a unique parameter)."""
    def find():
        text = nginx.config.access_log.read_text(errors="replace") if nginx.config.access_log.exists() else ""
        return next((line for line in text.splitlines() if marker in line), None)
    return poll(find, SLACK, f"the access log line of {marker}")


def assert_no_token(nginx, *tokens: str) -> None:
    text = nginx.config.access_log.read_text(errors="replace")
    for secret in tokens:
        for part in secret.split(".")[1:]:  # payload and signature: the header part is common
            assert part not in text


def upgrade_through(nginx, path: str):
    async def scenario():
        async with wss_connect(nginx, path) as ws:
            await ws.close()
    asyncio.run(scenario())


def test_an_accepted_upgrade_is_logged_without_its_token(nginx):
    secret = token("log-1")
    upgrade_through(nginx, f"/ws?token={secret}&room=7&marker=accepted")
    line = log_line(nginx, "marker=accepted")
    assert '"GET /ws?token=[redacted]&room=7&marker=accepted HTTP/1.1" 101 ' in line, line
    assert_no_token(nginx, secret)


def test_a_refused_upgrade_is_logged_without_its_token(nginx):
    good = token("log-2")
    forged = good.rsplit(".", 1)[0] + "." + token("someone-else").rsplit(".", 1)[1]
    with pytest.raises(websockets.InvalidStatusCode) as refused:
        upgrade_through(nginx, f"/ws?marker=refused&token={forged}")
    assert refused.value.status_code == 401  # pylon's answer: the token reached it
    line = log_line(nginx, "marker=refused")
    assert '"GET /ws?marker=refused&token=[redacted] HTTP/1.1" 401 ' in line, line
    assert_no_token(nginx, forged)


def test_two_token_parameters_leave_neither_in_the_log(nginx):
    first, second = token("log-3"), token("log-4")
    response = http_request(nginx.https_address, "GET",
                            f"/ws?marker=twice&token={first}&token={second}&x=1",
                            ssl_context=tls_context(nginx.config.ca))
    assert response.status > 0
    line = log_line(nginx, "marker=twice")
    assert re.search(r'"GET /ws\?marker=twice&token=\[redacted\]&\.\.\. HTTP/1\.1" \d{3} ', line), line
    assert_no_token(nginx, first, second)


def test_the_plain_http_redirect_is_logged_without_its_token(nginx):
    secret = token("log-5")
    response = http_request(nginx.http_address, "GET", f"/ws?token={secret}&marker=redirect")
    assert response.status == 301
    # The redirect keeps the query for the client; only the log leaves it out.
    assert secret in response.header("Location")
    line = log_line(nginx, "marker=redirect")
    assert '"GET /ws?token=[redacted]&marker=redirect HTTP/1.1" 301 ' in line, line
    assert_no_token(nginx, secret)


def test_requests_without_a_token_are_logged_as_they_are(nginx):
    response = http_request(nginx.https_address, "GET", "/healthz?marker=plain&notatoken=1&xtoken=2",
                            ssl_context=tls_context(nginx.config.ca))
    assert response.status == 200
    line = log_line(nginx, "marker=plain")
    assert '"GET /healthz?marker=plain&notatoken=1&xtoken=2 HTTP/1.1" 200 ' in line, line
