"""OCSP stapling of native TLS (issue 16, tls_ocsp_stapling), with real OpenSSL on both sides: a
local CA whose certificates name an `openssl ocsp -index` responder on 127.0.0.1
(support.ocsp), deploy/tls/ocsp-fetch.sh fetching the responses, and `openssl s_client -status`
reading what pylon staples.

- a good response is stapled when the client asks (TLS 1.3 and 1.2), and only then; an SNI
  certificate staples its own; the metric says when it goes stale;
- a revoked certificate's response is stapled (it is the truth);
- refused, with the reason in the log, while the certificate is served without a staple: a
  response about another certificate, a stale one, one without nextUpdate or from the future, one
  not signed by the issuer, status unknown, a certificate file without its issuer, garbage, none
  at all; a SHA-256 CertID is understood;
- a response whose nextUpdate passes while loaded stops being stapled;
- a new response is stapled after SIGHUP and after a change of the file alone, while an open
  wss:// connection keeps echoing.
"""

from __future__ import annotations

import asyncio
import datetime
import signal
import subprocess

import pytest
import websockets
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from support.nginx import local_ca
from support.ocsp import (OcspResponder, certificate_status_sent, next_update_of, ocsp_ca, revoke,
                          signed_response, stapled)
from support.server import REPO_DIR, poll
from support.tls import file_serial, start_tls_server

FETCH = REPO_DIR / "deploy" / "tls" / "ocsp-fetch.sh"
STAPLING = ("--tls-ocsp-stapling", "true")


def fetch(*chains) -> subprocess.CompletedProcess:
    result = subprocess.run([str(FETCH), *map(str, chains)], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def responder(tmp_path):
    with OcspResponder(tmp_path / "tls") as responder:
        ocsp_ca(responder)
        yield responder


def test_a_good_response_is_stapled_when_the_client_asks(responder):
    tls_dir = responder.directory
    fetch(tls_dir / "server.pem")
    with start_tls_server(tls_dir, *STAPLING) as server:
        staple = stapled(server.address)
        assert staple is not None, server.server.output()
        assert staple["status"] == "good"
        assert staple["serial"] == file_serial(tls_dir / "server.pem")
        # TLS 1.2 carries it in a CertificateStatus message: there only when asked for.
        assert certificate_status_sent(server.address, ask=True)
        assert not certificate_status_sent(server.address, ask=False)
        expected = next_update_of(tls_dir / "server.pem.ocsp").timestamp()
        assert server.metric("pylon_tls_ocsp_response_expiry_timestamp_seconds",
                             file=str(tls_dir / "server.pem")) == expected
    assert '"msg":"OCSP response stapled"' in server.server.output()


def test_without_the_key_nothing_is_stapled_and_there_is_no_series(responder):
    fetch(responder.directory / "server.pem")
    with start_tls_server(responder.directory) as server:
        assert stapled(server.address) is None
        assert "pylon_tls_ocsp_response_expiry_timestamp_seconds" not in server.metrics()


def test_an_sni_certificate_staples_its_own_response(tmp_path, responder):
    with OcspResponder(tmp_path / "other") as other_responder:
        other = ocsp_ca(other_responder, "other.test")
        fetch(responder.directory / "server.pem", other / "server.pem")
        pair = f"{other / 'server.pem'}:{other / 'server.key'}"
        with start_tls_server(responder.directory, *STAPLING, "--tls-sni-certs", pair) as server:
            mine = stapled(server.address, "other.test")
            assert mine is not None and mine["status"] == "good"
            assert mine["serial"] == file_serial(other / "server.pem")
            default = stapled(server.address, "localhost")
            assert default is not None
            assert default["serial"] == file_serial(responder.directory / "server.pem")
            expiries = [line for line in server.metrics().splitlines() if line.startswith(
                "pylon_tls_ocsp_response_expiry_timestamp_seconds{")]
            assert len(expiries) == 2, expiries


def test_a_revoked_certificate_staples_the_response_that_says_so(responder):
    revoke(responder.directory)
    result = fetch(responder.directory / "server.pem")
    assert "REVOKED" in result.stderr
    with start_tls_server(responder.directory, *STAPLING) as server:
        staple = stapled(server.address)
        assert staple is not None and staple["status"] == "revoked"
    assert '"status":"revoked"' in server.server.output()


def hour(hours: float) -> datetime.timedelta:
    return datetime.timedelta(hours=hours)


def without_chain(tls_dir):
    """A valid response, but the certificate file holds the certificate alone."""
    (tls_dir / "server.pem").write_bytes((tls_dir / "server.crt").read_bytes())
    return signed_response(tls_dir, next_update=hour(1))


# (how the response file is made from the CA directory, the reason pylon logs)
REFUSED = {
    "about another certificate": (None, "it is about another certificate"),
    "stale": (lambda d: signed_response(d, next_update=hour(-1), this_update=hour(-2)),
              "it expired at"),
    "without nextUpdate": (lambda d: signed_response(d, next_update=None), "it has no nextUpdate"),
    "from the future": (lambda d: signed_response(d, next_update=hour(3), this_update=hour(2)),
                        "is in the future"),
    "not signed by the issuer": (lambda d: signed_response(d, next_update=hour(1),
                                                           signer=d.parent / "other"),
                                 "its signature does not verify"),
    "status unknown": (lambda d: signed_response(d, next_update=hour(1),
                                                 status=ocsp.OCSPCertStatus.UNKNOWN),
                       "the responder does not know the certificate"),
    "no issuer in the certificate file": (without_chain, "the certificate's issuer is not in its file"),
    "garbage": (lambda d: b"\x30\x03garbage", "not a DER OCSP response"),
    "missing": (lambda d: None, "cannot read"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_response_that_cannot_be_trusted_is_not_stapled_and_the_log_says_why(tmp_path, case):
    tls_dir = local_ca(tmp_path / "tls")
    other = local_ca(tmp_path / "other")
    make, reason = REFUSED[case]
    if make is None:  # a valid response, but about the other CA's certificate
        response = signed_response(other, next_update=hour(1))
    else:
        response = make(tls_dir)
    if response is not None:
        (tls_dir / "server.pem.ocsp").write_bytes(response)
    # Stapling is optional for the client: the certificate is served all the same.
    with start_tls_server(tls_dir, *STAPLING) as server:
        assert stapled(server.address) is None
        assert server.metric("pylon_tls_ocsp_response_expiry_timestamp_seconds",
                             file=str(tls_dir / "server.pem")) == 0
    output = server.server.output()
    assert '"msg":"OCSP response not stapled"' in output
    assert reason in output, output


def test_a_sha256_certificate_id_is_understood(tmp_path):
    tls_dir = local_ca(tmp_path / "tls")
    (tls_dir / "server.pem.ocsp").write_bytes(
        signed_response(tls_dir, next_update=hour(1), digest=hashes.SHA256()))
    with start_tls_server(tls_dir, *STAPLING) as server:
        staple = stapled(server.address)
        assert staple is not None and staple["status"] == "good"


def test_a_response_that_goes_stale_while_loaded_stops_being_stapled(tmp_path):
    tls_dir = local_ca(tmp_path / "tls")
    (tls_dir / "server.pem.ocsp").write_bytes(
        signed_response(tls_dir, next_update=datetime.timedelta(seconds=10)))
    with start_tls_server(tls_dir, *STAPLING, "--tls-watch-interval", "0") as server:
        assert stapled(server.address) is not None
        poll(lambda: stapled(server.address) is None, 30, "the stale response to stop being stapled")
        poll(lambda: "OCSP response expired; no longer stapled" in server.server.output(), 10,
             "the log line of the stale response")


def echo(ws, text: str) -> None:
    async def once():
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), 10) == text
    return once()


def test_sighup_staples_the_new_response_without_dropping_connections(responder):
    tls_dir = responder.directory
    fetch(tls_dir / "server.pem")
    with start_tls_server(tls_dir, *STAPLING, "--tls-watch-interval", "0") as server:
        async def scenario():
            async with websockets.connect(server.url(), ssl=server.context()) as ws:
                await echo(ws, "before")
                assert (await asyncio.to_thread(stapled, server.address))["status"] == "good"
                revoke(tls_dir)
                await asyncio.to_thread(fetch, tls_dir / "server.pem")
                # Not read before the signal: file watching is off.
                assert (await asyncio.to_thread(stapled, server.address))["status"] == "good"
                server.server.signal(signal.SIGHUP)
                await asyncio.to_thread(
                    poll, lambda: (stapled(server.address) or {}).get("status") == "revoked", 15,
                    "the refreshed response to be stapled")
                await echo(ws, "after")
        asyncio.run(scenario())


def test_a_response_written_later_is_picked_up_by_the_file_watch(responder):
    tls_dir = responder.directory
    # None yet (ocsp-fetch.sh has not run): served without a staple, then with one.
    with start_tls_server(tls_dir, *STAPLING, "--tls-watch-interval", "0.2") as server:
        async def scenario():
            async with websockets.connect(server.url(), ssl=server.context()) as ws:
                assert await asyncio.to_thread(stapled, server.address) is None
                await asyncio.to_thread(fetch, tls_dir / "server.pem")
                await asyncio.to_thread(poll, lambda: stapled(server.address) is not None, 15,
                                        "the watcher to load the new response")
                await echo(ws, "still here")
        asyncio.run(scenario())
        assert server.metric("pylon_tls_ocsp_response_expiry_timestamp_seconds",
                             file=str(tls_dir / "server.pem")) > 0
