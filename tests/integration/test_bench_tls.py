"""`pylon bench` over wss:// through the production path: the shipped Nginx configuration
(deploy/nginx, rendered by support.nginx) terminating TLS with a certificate from the local CA
(deploy/tls/local-ca.sh), in front of a real `pylon serve`.

- echo with --ca-file: every message echoed, zero errors, the options recorded in the JSON;
- the same with permessage-deflate, which the server's counters show was used;
- the system store, or another CA: every connection fails with the `tls` error kind, whose
  message names certificate verification;
- a certificate for another name, by name and by IP address: a hostname / IP mismatch;
- --insecure connects to both; --insecure with --ca-file is a usage error.

Everything on 127.0.0.1; processes are stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest

from support.deflate import compression_counters
from support.nginx import local_ca, render, start_nginx
from support.server import pylon_bin, start_server


def bench(tmp_path: Path, url: str, *args: str, timeout: float = 60):
    """`pylon bench echo` for a second; returns (exit code, stdout + stderr, the --json document)."""
    json_path = tmp_path / "bench.json"
    json_path.unlink(missing_ok=True)
    argv = [pylon_bin(), "bench", "echo", "--url", url, "--threads", "2", "--connections", "4",
            "--duration", "1", "--json", str(json_path), *args]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    output = result.stdout + result.stderr
    assert json_path.exists(), f"no JSON written\n{output}"
    return result.returncode, output, json.loads(json_path.read_text())


def wrong_name_certificate(ca_dir: Path, directory: Path) -> Path:
    """server.pem + server.key signed by the local CA, valid for other.test only (no localhost,
    no 127.0.0.1), and ca.pem: a tls_dir for render()."""
    directory.mkdir()
    key, csr, ext = directory / "server.key", directory / "server.csr", directory / "server.ext"
    ext.write_text("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                   "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:other.test\n")
    for argv in (
        ["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=other.test"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.pem"), "-CAkey",
         str(ca_dir / "ca.key"), "-CAcreateserial", "-out", str(directory / "server.crt"),
         "-days", "30", "-sha256", "-extfile", str(ext)],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
    (directory / "server.pem").write_bytes((directory / "server.crt").read_bytes()
                                           + (ca_dir / "ca.pem").read_bytes())
    (directory / "ca.pem").write_bytes((ca_dir / "ca.pem").read_bytes())
    return directory


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(ca.pem, the Nginx whose certificate names localhost and 127.0.0.1, the Nginx whose
    certificate names other.test, the pylon behind both)."""
    tls = local_ca(tmp_path_factory.mktemp("tls"))
    wrong = wrong_name_certificate(tls, tmp_path_factory.mktemp("wrong") / "tls")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(start_server("--compression", "shared"))
        good = stack.enter_context(start_nginx(render(tmp_path_factory.mktemp("nginx"),
                                                      [server.address], tls)))
        other = stack.enter_context(start_nginx(render(tmp_path_factory.mktemp("nginx-wrong"),
                                                       [server.address], wrong)))
        yield tls / "ca.pem", good, other, server


def check_clean_echo(code: int, out: str, data: dict) -> None:
    assert code == 0, out
    assert data["errors"]["total"] == 0, data["errors"]
    assert data["connections"]["opened"] == 4 and data["connections"]["failed"] == 0
    assert data["sent"] > 0 and data["sent"] == data["received"] and data["lost"] == 0
    assert data["errors"]["mismatched"] == 0


def check_tls_failure(code: int, out: str, data: dict, reason: str) -> None:
    """Every connection failed with the tls kind, under a reason that starts with `reason`."""
    assert code == 1, out
    assert data["connections"]["opened"] == 0 and data["connections"]["failed"] == 4
    tls = data["errors"]["tls"]
    assert sum(tls.values()) == 4 == data["errors"]["total"], data["errors"]
    assert all(key.startswith(reason) for key in tls), tls
    assert f"tls {reason}" in out  # the summary names it too


def test_echo_through_nginx_tls(tmp_path, stack):
    ca, good, _, _ = stack
    code, out, data = bench(tmp_path, good.wss_url(), "--ca-file", str(ca), "--in-flight", "4")
    check_clean_echo(code, out, data)
    assert data["options"]["ca_file"] == str(ca) and data["options"]["insecure"] is False
    assert data["errors"]["tls"] == {}
    # By IP address: the certificate names 127.0.0.1 too.
    code, out, data = bench(tmp_path, good.wss_url(host="127.0.0.1"), "--ca-file", str(ca))
    check_clean_echo(code, out, data)


def test_echo_with_compression_through_nginx_tls(tmp_path, stack):
    ca, good, _, server = stack
    before = compression_counters(server.address)
    code, out, data = bench(tmp_path, good.wss_url(), "--ca-file", str(ca), "--compression",
                            "--payload", "json", "--size", "2048")
    check_clean_echo(code, out, data)
    after = compression_counters(server.address)
    # The server inflated our messages and compressed its echoes: the extension crossed Nginx.
    assert after["compressed_in"] > before["compressed_in"]
    assert after["compressed_out"] > before["compressed_out"]


def test_untrusted_certificate_is_a_tls_error(tmp_path, stack):
    _, good, _, _ = stack
    # The system store does not know the local CA.
    code, out, data = bench(tmp_path, good.wss_url())
    check_tls_failure(code, out, data, "certificate verify failed: ")
    # Nor does another local CA.
    other_ca = local_ca(tmp_path / "other-ca") / "ca.pem"
    code, out, data = bench(tmp_path, good.wss_url(), "--ca-file", str(other_ca))
    check_tls_failure(code, out, data, "certificate verify failed: ")


def test_name_mismatch_is_a_tls_error(tmp_path, stack):
    ca, _, other, _ = stack
    code, out, data = bench(tmp_path, other.wss_url(), "--ca-file", str(ca))
    check_tls_failure(code, out, data, "certificate verify failed: hostname mismatch")
    assert "not valid for localhost" in next(iter(data["errors"]["tls"]))
    code, out, data = bench(tmp_path, other.wss_url(host="127.0.0.1"), "--ca-file", str(ca))
    check_tls_failure(code, out, data, "certificate verify failed: IP address mismatch")


def test_insecure_connects_anyway(tmp_path, stack):
    _, good, other, _ = stack
    for nginx in (good, other):
        code, out, data = bench(tmp_path, nginx.wss_url(), "--insecure")
        check_clean_echo(code, out, data)
        assert data["options"]["insecure"] is True and data["options"]["ca_file"] == ""


def test_insecure_with_ca_file_is_a_usage_error(stack):
    ca, good, _, _ = stack
    result = subprocess.run([pylon_bin(), "bench", "echo", "--url", good.wss_url(), "--insecure",
                             "--ca-file", str(ca)], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "--ca-file is of no use with --insecure" in result.stderr
