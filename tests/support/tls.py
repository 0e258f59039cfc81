"""`pylon serve` with native TLS (tls_cert), for the suites that talk wss:// to it.

`start_tls_server(tls_dir, *extra_args)` starts it with tls_dir/server.pem + server.key (from
deploy/tls/local-ca.sh, see support.nginx.local_ca), a plain metrics listener beside it, and waits
until GET /healthz answers over TLS; the Server's address carries the client context that trusts
it (support.wsclient.TlsAddress). `served_serial` reads the certificate a handshake gets;
`tls_metric` reads one series from the plain metrics listener.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from support.nginx import tls_context
from support.server import Server, free_port, start_server
from support.wsclient import http_request


class TlsServer:
    def __init__(self, server: Server, metrics_port: int, ca: Path):
        self.server = server
        self.metrics_port = metrics_port
        self.ca = ca

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def url(self, path: str = "/ws/echo", host: str = "localhost") -> str:
        return f"wss://{host}:{self.server.port}{path}"

    def context(self, **kwargs) -> ssl.SSLContext:
        return tls_context(self.ca, **kwargs)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return response.read().decode()

    def metric(self, name: str, **labels) -> float:
        """One series' value (0 when absent); labels must match exactly."""
        wanted = {k: str(v) for k, v in labels.items()}
        for line in self.metrics().splitlines():
            match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
            if not match or match.group(1) != name:
                continue
            if dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or "")) == wanted:
                return float(match.group(4))
        return 0.0


@contextlib.contextmanager
def start_tls_server(tls_dir: Path, *extra_args: str) -> Iterator[TlsServer]:
    metrics_port = free_port()
    context = tls_context(tls_dir / "ca.pem")

    def ready(server: Server) -> bool:
        try:
            return http_request(server.address, "GET", "/healthz", timeout=2,
                                ssl_context=context).status == 200
        except (OSError, ssl.SSLError):
            return False

    with start_server("--tls-cert", str(tls_dir / "server.pem"), "--tls-key", str(tls_dir / "server.key"),
                      "--metrics-listen", f"127.0.0.1:{metrics_port}", *extra_args,
                      ready=ready) as server:
        server.ssl_context = context
        yield TlsServer(server, metrics_port, tls_dir / "ca.pem")


def served_certificate(address: tuple[str, int], server_name: Optional[str] = "localhost") -> bytes:
    """The DER certificate a handshake with this SNI name gets (not verified)."""
    context = tls_context(None)
    with socket.create_connection(address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def serial_of(pem_or_der: bytes, der: bool = False) -> int:
    argv = ["openssl", "x509", "-noout", "-serial"] + (["-inform", "DER"] if der else [])
    result = subprocess.run(argv, input=pem_or_der, capture_output=True, timeout=10, check=True)
    return int(result.stdout.decode().strip().split("=")[1], 16)


def served_serial(address: tuple[str, int], server_name: Optional[str] = "localhost") -> int:
    return serial_of(served_certificate(address, server_name), der=True)


def file_serial(pem: Path) -> int:
    return serial_of(pem.read_bytes())
