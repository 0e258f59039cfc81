"""The conformance suites run twice: over plain TCP (ws://) and over pylon's native TLS (wss://,
issue 16), the same tests on the same raw client.

`transport` ("ws" or "wss") parametrizes every test that uses a server; `start_server` (which
overrides the root one here) starts `pylon serve` over it, with a certificate from
deploy/tls/local-ca.sh when it is wss. A TLS server's address carries the client context that
trusts that CA (support.wsclient.TlsAddress), so the suites pass addresses as they always did.
"""

from __future__ import annotations

import contextlib

import pytest

from support import server as server_support
from support.nginx import local_ca
from support.tls import start_tls_server


@pytest.fixture(scope="session", params=["ws", "wss"])
def transport(request):
    return request.param


@pytest.fixture(scope="session")
def start_server(transport, tmp_path_factory):
    if transport == "ws":
        return server_support.start_server
    tls_dir = local_ca(tmp_path_factory.mktemp("conformance-tls"))

    @contextlib.contextmanager
    def start(*extra_args: str):
        with start_tls_server(tls_dir, *extra_args) as running:
            yield running.server

    return start


@pytest.fixture(scope="session")
def server(start_server):
    with start_server() as running:
        yield running
