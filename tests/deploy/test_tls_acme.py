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

Nothing leaves 127.0.0.1: pebble's directory, its DNS and the challenge all live there.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest
import websockets

from support.nginx import local_ca, nginx_tool, render, start_nginx
from support.server import REPO_DIR, free_ports, http_get_status, start_process, start_server

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


def test_certbot_issues_renews_and_nginx_reloads_without_cutting_websockets(tmp_path):
    for tool in ("pebble", "pebble-challtestsrv", "certbot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run scripts/deps.sh", pytrace=False)
    tls = local_ca(tmp_path / "tls")  # also pebble's own HTTPS certificate (IP:127.0.0.1)
    with start_server() as pylon:
        config = render(tmp_path / "nginx", [pylon.address], tls, domains=f"localhost {NAME}")
        with start_nginx(config) as nginx:
            dns_port, challtest_port, acme_port, acme_management = free_ports(4)
            dns_argv = ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                        "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                        "-tlsalpn01", "", "-management", f"127.0.0.1:{challtest_port}"]
            pebble_config = tmp_path / "pebble.json"
            pebble_config.write_text(json.dumps({"pebble": {
                "listenAddress": f"127.0.0.1:{acme_port}",
                "managementListenAddress": f"127.0.0.1:{acme_management}",
                "certificate": str(tls / "server.pem"), "privateKey": str(tls / "server.key"),
                "httpPort": nginx.config.http_port, "tlsPort": 1, "ocspResponderURL": "",
                "externalAccountBindingRequired": False}}))
            pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
            pebble_argv = ["pebble", "-config", str(pebble_config), "-dnsserver", f"127.0.0.1:{dns_port}"]
            with start_process(dns_argv, challtest_port, ready=tcp_ready, stop_timeout=5), \
                    start_process(pebble_argv, acme_port, ready=tcp_ready, env=pebble_env, stop_timeout=5):
                env = {"CERTBOT_SERVER": f"https://127.0.0.1:{acme_port}/dir",
                       "CERTBOT_DIR": str(tmp_path / "certbot"),
                       "REQUESTS_CA_BUNDLE": str(tls / "ca.pem"),
                       "NGINX_CONF": str(config.conf), "HOME": str(tmp_path)}
                issued = certbot(env, str(TLS_DIR / "certbot-issue.sh"), "--webroot",
                                 str(config.acme_webroot), "-d", NAME)
                assert issued.returncode == 0, f"{issued.stdout}\n{issued.stderr}"
                live = tmp_path / "certbot" / "config" / "live" / NAME
                assert (live / "fullchain.pem").exists()

                # Nginx onto the issued certificate (as production points at live/), reloaded
                # by the hook.
                render(tmp_path / "nginx", [pylon.address], tls, domains=f"localhost {NAME}",
                       NGINX_HTTP_LISTEN=f"127.0.0.1:{nginx.config.http_port}",
                       NGINX_HTTPS_LISTEN=f"127.0.0.1:{nginx.config.https_port}",
                       TLS_CERTIFICATE=str(live / "fullchain.pem"),
                       TLS_CERTIFICATE_KEY=str(live / "privkey.pem"),
                       TLS_TRUSTED_CERTIFICATE=str(live / "chain.pem"))
                assert nginx_tool(nginx.config, "-t").returncode == 0
                hook = certbot({"NGINX_CONF": str(config.conf)}, str(TLS_DIR / "reload-nginx.sh"))
                assert hook.returncode == 0, hook.stderr

                # Trust pebble's root (it makes a new one at every start).
                opener = urllib.request.build_opener(
                    urllib.request.ProxyHandler({}),
                    urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(tls / "ca.pem"))))
                root = opener.open(f"https://127.0.0.1:{acme_management}/roots/0", timeout=10).read().decode()
                context = ssl.create_default_context(cadata=root)

                deadline = time.monotonic() + 15
                while True:
                    try:
                        first = served_certificate(nginx.config.https_port, context)
                        break
                    except ssl.SSLError:
                        assert time.monotonic() < deadline, "nginx does not serve the issued certificate"
                        time.sleep(0.1)  # polling the reloaded workers
                assert ("DNS", NAME) in first["subjectAltName"]
                assert "Pebble" in str(first["issuer"])

                async def scenario():
                    url = f"wss://{NAME}:{nginx.config.https_port}/ws/echo"
                    clients = await asyncio.gather(*(websockets.connect(
                        url, host="127.0.0.1", port=nginx.config.https_port, ssl=context,
                        server_hostname=NAME, ping_interval=None, open_timeout=15) for _ in range(HELD)))
                    try:
                        renewed = await asyncio.to_thread(
                            certbot, env, "certbot", "renew", "--force-renewal", "--server",
                            env["CERTBOT_SERVER"], "--config-dir", f"{env['CERTBOT_DIR']}/config",
                            "--work-dir", f"{env['CERTBOT_DIR']}/work", "--no-random-sleep-on-renew", "--logs-dir",
                            f"{env['CERTBOT_DIR']}/logs", "--non-interactive")
                        assert renewed.returncode == 0, f"{renewed.stdout}\n{renewed.stderr}"
                        assert "reloaded nginx" in renewed.stdout + renewed.stderr, renewed.stderr
                        deadline = time.monotonic() + 15
                        while (await asyncio.to_thread(served_certificate, nginx.config.https_port,
                                                       context))["serialNumber"] == first["serialNumber"]:
                            assert time.monotonic() < deadline, "the renewed certificate is not served"
                            await asyncio.sleep(0.1)  # polling the reloaded workers
                        await asyncio.gather(*(c.send(f"after renewal {i}") for i, c in enumerate(clients)))
                        answers = await asyncio.gather(*(asyncio.wait_for(c.recv(), 15) for c in clients))
                        assert answers == [f"after renewal {i}" for i in range(HELD)]
                    finally:
                        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

                asyncio.run(scenario())
