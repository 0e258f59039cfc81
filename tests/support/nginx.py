"""The one way to run the shipped Nginx configuration in a test.

- `local_ca(directory)`: deploy/tls/local-ca.sh into `directory` (ca.pem, server.pem,
  server.key valid for localhost and 127.0.0.1).
- `render(directory, upstreams, tls_dir, **variables)`: deploy/nginx/render.sh into
  `directory/conf` with private paths (pid, logs, temp dirs, ACME webroot under `directory`),
  the given pylon upstreams and free ports; returns a `NginxConfig`. `variables` override the
  template's variables (e.g. WS_PROXY_TIMEOUT="3s").
- `start_nginx(config)`: runs `nginx -p DIR -c CONF -e stderr -g 'daemon off;'` as a plain
  process (support.server.start_process: output attached to failing tests, stopped by PID),
  ready when the plain port answers; yields a `Nginx`.
- `nginx_tool(config, "-t")`: `nginx -t` / `nginx -T` on the rendered configuration.
- `tls_context(ca, ...)`: an SSL client context trusting only the local CA.

Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import resource
import shutil
import ssl
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

from support.server import REPO_DIR, Server, free_ports, http_get_status, start_process

RENDER = REPO_DIR / "deploy" / "nginx" / "render.sh"
LOCAL_CA = REPO_DIR / "deploy" / "tls" / "local-ca.sh"


def nginx_bin() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if path is None:
        pytest.fail("nginx not found: run scripts/deps.sh (package nginx)", pytrace=False)
    return path


def local_ca(directory: Path, *names: str, ocsp_url: Optional[str] = None) -> Path:
    """deploy/tls/local-ca.sh DIR NAME...; with ocsp_url, the certificate names that responder
    and DIR/index.txt records it (support.ocsp)."""
    options = ["--ocsp-url", ocsp_url] if ocsp_url else []
    result = subprocess.run([str(LOCAL_CA), *options, str(directory), *names], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"local-ca.sh failed:\n{result.stdout}\n{result.stderr}"
    return directory


@dataclass
class NginxConfig:
    directory: Path  # prefix: conf/, logs/, tmp/, acme/
    http_port: int
    https_port: int
    ca: Path
    variables: dict = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.directory / "conf" / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "nginx.pid"

    @property
    def acme_webroot(self) -> Path:
        return self.directory / "acme"

    @property
    def access_log(self) -> Path:
        return self.directory / "logs" / "access.log"


def render(directory: Path, upstreams: Sequence[tuple[str, int]], tls_dir: Path,
           domains: str = "localhost 127.0.0.1", **variables: str) -> NginxConfig:
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp", "acme"):
        (directory / sub).mkdir(exist_ok=True)
    http_port, https_port = free_ports(2)
    hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    values = {
        "PYLON_DOMAINS": domains,
        "PYLON_UPSTREAMS": " ".join(f"{host}:{port}" for host, port in upstreams),
        "NGINX_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "NGINX_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "TLS_CERTIFICATE": str(tls_dir / "server.pem"),
        "TLS_CERTIFICATE_KEY": str(tls_dir / "server.key"),
        "TLS_TRUSTED_CERTIFICATE": str(tls_dir / "ca.pem"),
        "ACME_WEBROOT": str(directory / "acme"),
        "NGINX_USER": getpass.getuser(),
        "NGINX_PID": str(directory / "nginx.pid"),
        "NGINX_ERROR_LOG": "stderr",
        "NGINX_ACCESS_LOG": str(directory / "logs" / "access.log"),
        "NGINX_TEMP_DIR": str(directory / "tmp"),
        # This machine's hard limit cannot be raised (no CAP_SYS_RESOURCE).
        "NGINX_RLIMIT_NOFILE": str(min(hard_limit, 200000)),
        "NGINX_WORKER_CONNECTIONS": "4096",
    }
    values.update(variables)
    result = subprocess.run([str(RENDER), str(directory / "conf")], env={**os.environ, **values},
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"render.sh failed:\n{result.stdout}\n{result.stderr}"
    return NginxConfig(directory, http_port, https_port, tls_dir / "ca.pem", values)


def nginx_tool(config: NginxConfig, *args: str) -> subprocess.CompletedProcess:
    """`nginx -t`, `nginx -T`, `nginx -s reload` ... on the rendered configuration."""
    return subprocess.run([nginx_bin(), "-p", str(config.directory), "-e", "stderr", "-c",
                           str(config.conf), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


class Nginx:
    def __init__(self, config: NginxConfig, process: Server):
        self.config = config
        self.process = process

    @property
    def http_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.config.http_port

    @property
    def https_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.config.https_port

    def wss_url(self, path: str = "/ws/echo", host: str = "localhost") -> str:
        return f"wss://{host}:{self.config.https_port}{path}"

    def master_pid(self) -> int:
        return int(self.config.pid_file.read_text().strip())


def _ready(config: NginxConfig):
    def ready(server: Server) -> bool:
        return (config.pid_file.exists()
                and http_get_status("127.0.0.1", config.http_port, "/") == 301)
    return ready


@contextlib.contextmanager
def start_nginx(config: NginxConfig) -> Iterator[Nginx]:
    argv = [nginx_bin(), "-p", str(config.directory), "-e", "stderr", "-c", str(config.conf),
            "-g", "daemon off;"]
    with start_process(argv, config.http_port, ready=_ready(config), stop_timeout=10) as process:
        yield Nginx(config, process)


def tls_context(ca: Optional[Path], minimum: Optional[ssl.TLSVersion] = None,
                maximum: Optional[ssl.TLSVersion] = None) -> ssl.SSLContext:
    """A client context that trusts only `ca` (None: verification off). TLS 1.0/1.1 need
    OpenSSL's security level 0 to be offered at all, so a refusal comes from the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(ca))
    with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated: testing that on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
            if maximum < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def wss_connect(nginx: Nginx, path: str = "/ws/echo", host: str = "localhost", **kwargs):
    """`websockets.connect` to wss://HOST:PORT/PATH through `nginx`, verifying the local CA.
    The client sends no pings of its own (tests decide who keeps a connection alive) and
    answers the server's pings, as browsers do."""
    import websockets  # python3-websockets; imported here so the module loads without it

    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", 15)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_queue", None)
    return websockets.connect(nginx.wss_url(path, host), ssl=tls_context(nginx.config.ca), **kwargs)


def pylon_connections(server: Server, endpoint: str = "/ws/echo") -> int:
    """The instance's own `pylon_connections{endpoint=...}`, read from its /metrics directly."""
    from support.wsclient import http_request

    response = http_request(server.address, "GET", "/metrics")
    assert response.status == 200, response.raw_head
    wanted = f'pylon_connections{{endpoint="{endpoint}"}} '
    for line in response.body.decode().splitlines():
        if line.startswith(wanted):
            return int(float(line[len(wanted):]))
    return 0
