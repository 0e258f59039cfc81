"""Native TLS in `pylon serve` (tls_cert, issue 16): real clients over wss:// trusting the local CA
from deploy/tls/local-ca.sh — Python `websockets`, Node `ws`, Python's ssl module for the protocol
details (versions, ALPN, resumption, SNI) — and the TLS metrics on the plain metrics listener."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import websockets

from support.nginx import local_ca
from support.server import poll
from support.tls import file_serial, served_serial, start_tls_server
from support.wsclient import http_request


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return local_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls_dir):
    with start_tls_server(tls_dir, "--threads", "2", "--tls-watch-interval", "0") as running:
        yield running


def echo_over_wss(server, context, messages, **kwargs):
    async def scenario():
        async with websockets.connect(server.url(), ssl=context, open_timeout=15, **kwargs) as ws:
            for message in messages:
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), 10) == message
            return ws.transport.get_extra_info("ssl_object").version()
    return asyncio.run(scenario())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_python_websockets_echo_over_each_tls_version(tls_server, version):
    context = tls_server.context(minimum=version, maximum=version)
    # A message larger than a TLS record (16 KiB) and than the loop's receive buffer.
    negotiated = echo_over_wss(tls_server, context, ["hello", "é" * 10, b"\x00\xff" * 150_000])
    assert negotiated == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_before_1_2_is_refused(tls_server, version):
    context = tls_server.context(minimum=version, maximum=version)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        http_request(tls_server.address, "GET", "/healthz", ssl_context=context)


def test_alpn_selects_http_1_1(tls_server):
    context = tls_server.context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(tls_server.address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            assert tls.version() == "TLSv1.3"
            cipher = tls.cipher()[0]
    assert cipher in {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


def test_a_tls_1_2_client_gets_an_ecdhe_aead_cipher(tls_server):
    context = tls_server.context(maximum=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(tls_server.address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            name = tls.cipher()[0]
    assert name.startswith("ECDHE-ECDSA-") and ("GCM" in name or "CHACHA20" in name), name


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume_with_tickets(tls_server, version):
    context = tls_server.context(minimum=version, maximum=version)
    resumed_before = tls_server.metric("pylon_tls_handshakes_total", result="resumed")
    session, reused = resume(tls_server, context)
    assert not reused
    _, reused = resume(tls_server, context, session)
    assert reused
    assert tls_server.metric("pylon_tls_handshakes_total", result="resumed") == resumed_before + 1


def resume(server, context, session=None):
    """One request on a new TLS connection (resuming `session` if given): (session, reused)."""
    raw = socket.create_connection(server.address, timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")  # TLS 1.3: the ticket came first
        return tls.session, tls.session_reused


def test_ticket_keys_rotate_on_a_schedule(tls_dir):
    period = 2  # seconds, tls_ticket_key_rotation here (3600 by default)
    with start_tls_server(tls_dir, "--tls-ticket-key-rotation", str(period)) as server:
        context = server.context()
        rotations = lambda: server.metric("pylon_tls_ticket_key_rotations_total")  # noqa: E731
        while True:  # a ticket sealed with a known key (no rotation during the request)
            sealed_under = rotations()
            session, reused = resume(server, context)
            if rotations() == sealed_under:
                break
        assert not reused
        # One rotation later the ticket's key is the previous one: it still resumes.
        poll(lambda: rotations() == sealed_under + 1, 3 * period, "a ticket key rotation")
        _, reused = resume(server, context, session)
        assert reused, "a ticket of the previous key must resume"
        # Two rotations later its key is gone: a full handshake.
        poll(lambda: rotations() >= sealed_under + 2, 3 * period, "a second ticket key rotation")
        _, reused = resume(server, context, session)
        assert not reused, "a ticket of a key rotated out must not resume"


def test_sni_picks_the_certificate_of_the_name(tmp_path):
    main = local_ca(tmp_path / "main")
    other = local_ca(tmp_path / "other", "other.test")
    pair = f"{other / 'server.pem'}:{other / 'server.key'}"
    with start_tls_server(main, "--tls-sni-certs", pair) as server:
        assert served_serial(server.address, "other.test") == file_serial(other / "server.pem")
        # The default is valid for localhost (so is the other one: the default wins), and serves
        # names no certificate has and clients without SNI.
        assert served_serial(server.address, "localhost") == file_serial(main / "server.pem")
        assert served_serial(server.address, "unknown.test") == file_serial(main / "server.pem")
        assert served_serial(server.address, None) == file_serial(main / "server.pem")
        expiries = [line for line in server.metrics().splitlines()
                    if line.startswith("pylon_tls_certificate_expiry_timestamp_seconds{")]
        assert len(expiries) == 2, expiries


def test_node_ws_client_over_wss(tls_server, tmp_path):
    script = tmp_path / "client.js"
    script.write_text("""
const fs = require('fs');
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[2], {ca: fs.readFileSync(process.argv[3])});
ws.on('open', () => ws.send('from node'));
ws.on('message', (data) => { console.log(JSON.stringify({echo: data.toString()})); ws.close(1000); });
ws.on('close', (code) => { console.log(JSON.stringify({close: code})); process.exit(0); });
ws.on('error', (error) => { console.error(String(error)); process.exit(1); });
""")
    env = {**os.environ, "NODE_PATH": os.environ.get("NODE_PATH", "/usr/share/nodejs")}
    result = subprocess.run(["node", str(script), tls_server.url(), str(tls_server.ca)], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [{"echo": "from node"}, {"close": 1000}]


def test_metrics_count_handshakes_and_connections(tls_server, tls_dir):
    full_before = tls_server.metric("pylon_tls_handshakes_total", result="full")

    async def scenario():
        async with websockets.connect(tls_server.url(), ssl=tls_server.context()) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            open_now = (tls_server.metric("pylon_tls_connections", ktls="false") +
                        tls_server.metric("pylon_tls_connections", ktls="true"))
            assert open_now >= 1
    asyncio.run(scenario())
    assert tls_server.metric("pylon_tls_handshakes_total", result="full") >= full_before + 1
    not_after = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601",
                                "-in", str(tls_dir / "server.pem")], capture_output=True, text=True,
                               check=True).stdout.strip().split("=", 1)[1]
    expected = time.mktime(time.strptime(not_after, "%Y-%m-%d %H:%M:%SZ")) - time.timezone
    served = tls_server.metric("pylon_tls_certificate_expiry_timestamp_seconds",
                               file=str(tls_dir / "server.pem"))
    assert served == expected
    poll(lambda: tls_server.metric("pylon_tls_connections", ktls="false") +
         tls_server.metric("pylon_tls_connections", ktls="true") == 0, 10,
         "the TLS connection gauge to come back to 0")


def test_plain_http_on_the_tls_port_fails_the_handshake(tls_server):
    failed_before = tls_server.metric("pylon_tls_handshakes_total", result="failed")
    with socket.create_connection(tls_server.address, timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = raw.recv(4096)  # an alert, then EOF
        while data:
            chunk = raw.recv(4096)
            if not chunk:
                break
    poll(lambda: tls_server.metric("pylon_tls_handshakes_total", result="failed") >= failed_before + 1,
         10, "the failed handshake to be counted")


def test_bad_tls_configuration_names_the_key(tmp_path):
    from support.server import run_pylon
    tls = local_ca(tmp_path / "tls")
    other = local_ca(tmp_path / "other")
    cases = [
        (["--tls-cert", str(tmp_path / "missing.pem")], "tls_cert: cannot load the certificate"),
        (["--tls-cert", str(tls / "server.pem"), "--tls-key", str(other / "server.key")],
         "key values mismatch"),
        (["--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key"),
          "--tls-ciphers", "NO-SUCH-CIPHER"], "tls_ciphers:"),
        (["--tls-key", str(tls / "server.key")], "tls_key: needs tls_cert"),
        (["--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key"),
          "--tls-sni-certs", "a:b:c"], "tls_sni_certs:"),
    ]
    for args, message in cases:
        result = run_pylon("serve", "--listen", "127.0.0.1:0", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
