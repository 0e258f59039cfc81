"""Let's Encrypt, offline: Debian's `pebble` (the ACME test server) plays Let's Encrypt, and
`pebble-challtestsrv` is its DNS, resolving every name to 127.0.0.1. Through
deploy/tls/certbot-issue.sh (webroot authenticator):

- certbot obtains a certificate for `pylon.test`: pebble fetches the http-01 challenge from the
  test Nginx's port-80 server (ACME path, not redirected);
- Nginx, re-rendered onto certbot's live/ paths and reloaded by the deploy hook, serves that
  certificate (issued by pebble's CA, SAN pylon.test);
- 100 wss:// connections held open across `certbot renew --force-renewal` (which runs the
  deploy hook recorded at issuance) all keep echoing, and a new connection sees the new
  certificate.

The no-proxy topology (docs/deployment.md "pylon with native TLS") the same way: `certbot certonly
--standalone` as documented, its deploy hook deploy/tls/reload-pylon.sh installing the pair where
`pylon serve` reads it and sending SIGHUP; pylon serves the issued certificate, and 100 wss://
connections held across the forced renewal keep echoing while new handshakes get the renewed one.

Nothing leaves 127.0.0.1: pebble's directory, its DNS and the challenge all live there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import websockets

from support.nginx import local_ca, nginx_tool, render, start_nginx
from support.server import REPO_DIR, free_ports, start_process, start_server
from support.tls import start_tls_server

TLS_DIR = REPO_DIR / "deploy" / "tls"
NAME = "pylon.test"
HELD = 100


def tcp_ready(server) -> bool:
    try:
        with socket.create_connection(server.address, timeout=1):
            return True
    except OSError:
        return False


def certbot(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def served_certificate(port: int, context: ssl.SSLContext) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            return tls.getpeercert()


class Pebble:
    """A running pebble (+ pebble-challtestsrv as its DNS) and certbot pointed at it."""

    def __init__(self, tmp_path, tls, acme_port: int, management_port: int):
        self.tls, self.management_port = tls, management_port
        self.env = {"CERTBOT_SERVER": f"https://127.0.0.1:{acme_port}/dir",
                    "CERTBOT_DIR": str(tmp_path / "certbot"),
                    "REQUESTS_CA_BUNDLE": str(tls / "ca.pem"), "HOME": str(tmp_path)}

    def certbot_options(self) -> list[str]:
        """What points a `certbot` command at pebble and the test's directories."""
        root = self.env["CERTBOT_DIR"]
        return ["--server", self.env["CERTBOT_SERVER"], "--config-dir", f"{root}/config",
                "--work-dir", f"{root}/work", "--logs-dir", f"{root}/logs", "--non-interactive"]

    def renew(self) -> subprocess.CompletedProcess:
        """`certbot renew --force-renewal`: runs the deploy hook recorded at issuance."""
        return certbot(self.env, "certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew",
                       *self.certbot_options())

    def live(self, name: str):
        return Path(self.env["CERTBOT_DIR"]) / "config" / "live" / name

    def client_context(self) -> ssl.SSLContext:
        """Trusts what pebble issues (it makes a new root at every start)."""
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(self.tls / "ca.pem"))))
        root = opener.open(f"https://127.0.0.1:{self.management_port}/roots/0", timeout=10).read().decode()
        return ssl.create_default_context(cadata=root)


@contextlib.contextmanager
def start_pebble(tmp_path, tls, http_port: int) -> Iterator[Pebble]:
    """pebble validating http-01 challenges on 127.0.0.1:http_port, its HTTPS certificate from
    the local CA `tls` (IP:127.0.0.1)."""
    for tool in ("pebble", "pebble-challtestsrv", "certbot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run scripts/deps.sh", pytrace=False)
    dns_port, challtest_port, acme_port, acme_management = free_ports(4)
    dns_argv = ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"127.0.0.1:{challtest_port}"]
    pebble_config = tmp_path / "pebble.json"
    pebble_config.write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{acme_management}",
        "certificate": str(tls / "server.pem"), "privateKey": str(tls / "server.key"),
        "httpPort": http_port, "tlsPort": 1, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    pebble_argv = ["pebble", "-config", str(pebble_config), "-dnsserver", f"127.0.0.1:{dns_port}"]
    with start_process(dns_argv, challtest_port, ready=tcp_ready, stop_timeout=5), \
            start_process(pebble_argv, acme_port, ready=tcp_ready, env=pebble_env, stop_timeout=5):
        yield Pebble(tmp_path, tls, acme_port, acme_management)


async def hold_across(connect, renew, served_serial, first_serial) -> None:
    """HELD connections opened by `connect()` stay open while `renew()` runs (in a thread), until
    `served_serial()` differs from first_serial; then every one of them must still echo."""
    clients = await asyncio.gather(*(connect() for _ in range(HELD)))
    try:
        await asyncio.to_thread(renew)
        deadline = time.monotonic() + 15
        while await asyncio.to_thread(served_serial) == first_serial:
            assert time.monotonic() < deadline, "the renewed certificate is not served"
            await asyncio.sleep(0.1)  # polling the certificate new handshakes get
        await asyncio.gather(*(c.send(f"after renewal {i}") for i, c in enumerate(clients)))
        answers = await asyncio.gather(*(asyncio.wait_for(c.recv(), 15) for c in clients))
        assert answers == [f"after renewal {i}" for i in range(HELD)]
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def wait_served(port: int, context: ssl.SSLContext, in_a_row: int = 5) -> dict:
    """The certificate handshakes get once they verify `in_a_row` times running: while Nginx
    reloads, a new connection may still reach an old worker and its old certificate."""
    deadline = time.monotonic() + 15
    verified = 0
    while True:
        try:
            certificate = served_certificate(port, context)
            verified += 1
            if verified == in_a_row:
                return certificate
        except ssl.SSLError:
            verified = 0
            assert time.monotonic() < deadline, "the issued certificate is not served"
            time.sleep(0.1)  # polling the reloaded server


def test_certbot_issues_renews_and_nginx_reloads_without_cutting_websockets(tmp_path):
    tls = local_ca(tmp_path / "tls")  # also pebble's own HTTPS certificate (IP:127.0.0.1)
    with start_server() as pylon:
        config = render(tmp_path / "nginx", [pylon.address], tls, domains=f"localhost {NAME}")
        with start_nginx(config) as nginx, start_pebble(tmp_path, tls, nginx.config.http_port) as pebble:
            env = {**pebble.env, "NGINX_CONF": str(config.conf)}
            issued = certbot(env, str(TLS_DIR / "certbot-issue.sh"), "--webroot",
                             str(config.acme_webroot), "-d", NAME)
            assert issued.returncode == 0, f"{issued.stdout}\n{issued.stderr}"
            live = pebble.live(NAME)
            assert (live / "fullchain.pem").exists()

            # Nginx onto the issued certificate (as production points at live/), reloaded by the
            # hook.
            render(tmp_path / "nginx", [pylon.address], tls, domains=f"localhost {NAME}",
                   NGINX_HTTP_LISTEN=f"127.0.0.1:{nginx.config.http_port}",
                   NGINX_HTTPS_LISTEN=f"127.0.0.1:{nginx.config.https_port}",
                   TLS_CERTIFICATE=str(live / "fullchain.pem"),
                   TLS_CERTIFICATE_KEY=str(live / "privkey.pem"),
                   TLS_TRUSTED_CERTIFICATE=str(live / "chain.pem"))
            assert nginx_tool(nginx.config, "-t").returncode == 0
            hook = certbot({"NGINX_CONF": str(config.conf)}, str(TLS_DIR / "reload-nginx.sh"))
            assert hook.returncode == 0, hook.stderr

            context = pebble.client_context()
            port = nginx.config.https_port
            first = wait_served(port, context)
            assert ("DNS", NAME) in first["subjectAltName"]
            assert "Pebble" in str(first["issuer"])

            def renew():
                renewed = pebble.renew()
                assert renewed.returncode == 0, f"{renewed.stdout}\n{renewed.stderr}"
                assert "reloaded nginx" in renewed.stdout + renewed.stderr, renewed.stderr

            asyncio.run(hold_across(
                lambda: websockets.connect(f"wss://{NAME}:{port}/ws/echo", host="127.0.0.1", port=port,
                                           ssl=context, server_hostname=NAME, ping_interval=None,
                                           open_timeout=15),
                renew, lambda: served_certificate(port, context)["serialNumber"], first["serialNumber"]))


def test_certbot_standalone_renews_and_pylon_reloads_without_cutting_websockets(tmp_path):
    tls = local_ca(tmp_path / "tls")
    served = tmp_path / "pylon-tls"  # PYLON_TLS_DIR: until the first issuance, a local certificate
    served.mkdir()
    for name in ("server.pem", "server.key", "ca.pem"):
        (served / name).write_bytes((tls / name).read_bytes())
    challenge_port = free_ports(1)[0]
    with start_pebble(tmp_path, tls, challenge_port) as pebble, \
            start_tls_server(served, "--tls-watch-interval", "0") as pylon:
        # The command of docs/deployment.md, pointed at pebble, the challenge on a free port, and
        # the hook signalling this pylon rather than `systemctl reload 'pylon@*'`.
        hook = (f"env PYLON_TLS_DIR={served} PYLON_PID={pylon.server.pid} RENEWED_DOMAINS={NAME} "
                f"{TLS_DIR / 'reload-pylon.sh'}")
        issued = certbot(pebble.env, "certbot", "certonly", "--standalone", "-d", NAME,
                         "--agree-tos", "--register-unsafely-without-email", "--key-type", "ecdsa",
                         "--http-01-address", "127.0.0.1", "--http-01-port", str(challenge_port),
                         "--deploy-hook", hook, *pebble.certbot_options())
        assert issued.returncode == 0, f"{issued.stdout}\n{issued.stderr}"
        assert f"installed the certificate for {NAME}" in issued.stdout + issued.stderr, issued.stderr

        context = pebble.client_context()
        port = pylon.server.port
        first = wait_served(port, context)  # the SIGHUP from the hook, not the file watcher (off)
        assert ("DNS", NAME) in first["subjectAltName"] and "Pebble" in str(first["issuer"]), first
        assert pylon.metric("pylon_tls_reloads_total", result="ok") == 1

        def renew():
            renewed = pebble.renew()
            assert renewed.returncode == 0, f"{renewed.stdout}\n{renewed.stderr}"
            assert f"installed the certificate for {NAME}" in renewed.stdout + renewed.stderr, renewed.stderr

        asyncio.run(hold_across(
            lambda: websockets.connect(f"wss://{NAME}:{port}/ws/echo", host="127.0.0.1", port=port,
                                       ssl=context, server_hostname=NAME, ping_interval=None,
                                       open_timeout=15),
            renew, lambda: served_certificate(port, context)["serialNumber"], first["serialNumber"]))
        assert pylon.metric("pylon_tls_reloads_total", result="ok") == 2
