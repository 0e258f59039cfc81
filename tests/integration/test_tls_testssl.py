"""testssl.sh (Debian package testssl.sh) grades `pylon serve` with native TLS (issue 16): protocols
(-p), cipher categories (-s), server defaults (-S) and every vulnerability it checks (-U), asserted
on its JSON output. Runs in about half a minute against 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from support.nginx import local_ca
from support.tls import start_tls_server

# Findings a local CA cannot pass, whatever the server does: the CA publishes no CRL or OCSP
# responder, and DNS has no CAA record for localhost. testssl's own OpenSSL lacks GOST engines.
NOT_THE_SERVERS = {"cert_revocation", "DNS_CAArecord", "engine_problem"}
# testssl.sh's ticket-resumption check sometimes fails to connect in a full `make test` run (never
# alone, and pylon logs no refusal): inconclusive, not a finding about the server. Resumption by
# ticket is asserted by test_tls_serve.py on its own, whatever testssl.sh says here.
TESTSSL_CONNECT_PROBLEM = "check failed because of connect problem"


def inconclusive(id_: str, finding: dict) -> bool:
    return id_ == "sessionresumption_ticket" and finding["finding"] == TESTSSL_CONNECT_PROBLEM


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.fail("testssl not found: run scripts/deps.sh (package testssl.sh)", pytrace=False)
    directory = tmp_path_factory.mktemp("testssl")
    tls_dir = local_ca(directory / "tls")
    report = directory / "report.json"
    with start_tls_server(tls_dir, "--log-level", "warn") as server:
        result = subprocess.run(
            [testssl, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", str(tls_dir / "ca.pem"),
             "-p", "-s", "-S", "-U", "--jsonfile", str(report), f"localhost:{server.address[1]}"],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert report.exists(), result.stdout + result.stderr
    return {finding["id"]: finding for finding in json.loads(report.read_text())}


def test_only_tls_1_2_and_1_3_are_offered(findings):
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[old]["finding"] == "not offered", findings[old]
    assert findings["TLS1_2"]["finding"] == "offered"
    assert findings["TLS1_3"]["finding"].startswith("offered")


def test_no_weak_cipher_is_offered(findings):
    for category in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                     "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
        assert findings[category]["finding"] == "not offered", findings[category]
    assert findings["cipherlist_STRONG"]["finding"] == "offered"


def test_alpn_and_session_resumption(findings):
    assert findings["ALPN"]["finding"] == "http/1.1"
    ticket = findings["sessionresumption_ticket"]
    assert ticket["finding"] == "supported" or inconclusive("sessionresumption_ticket", ticket), ticket
    assert findings["cert_chain_of_trust"]["severity"] == "OK", findings["cert_chain_of_trust"]


def test_no_vulnerability_and_nothing_worse_than_info(findings):
    bad = {id_: finding["finding"] for id_, finding in findings.items()
           if finding["severity"] not in ("OK", "INFO") and id_ not in NOT_THE_SERVERS
           and not inconclusive(id_, finding)}
    assert not bad, bad
    for vulnerability in ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_client_renego",
                          "CRIME_TLS", "POODLE_SSL", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST",
                          "LUCKY13", "RC4"):
        assert findings[vulnerability]["severity"] == "OK", findings[vulnerability]
