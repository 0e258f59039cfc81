"""The scripts of deploy/tls, run for real (offline, never against Let's Encrypt):

- local-ca.sh: a CA and a server certificate valid for localhost and 127.0.0.1 (SANs read with
  `openssl x509`), verified by `openssl verify`; extra names become SANs; a second run keeps the
  CA (clients that trust it keep working) and issues a new server certificate;
- csr.sh: RSA 2048 and ECDSA P-256 keys (mode 600) with CSRs whose self-signature verifies
  (`openssl req -verify`) and that carry every name as a SAN;
- certbot-issue.sh --print: the certbot command for the webroot and nginx authenticators, with
  the staging switch, several -d names and the deploy hook; every option it uses is one this
  certbot knows (`certbot --help all`, offline);
- reload-nginx.sh (the deploy hook) against a running test Nginx: it reloads, the new
  certificate is served afterwards, and a wss:// connection held open across the reload keeps
  echoing;
- reload-pylon.sh (the deploy hook of the no-proxy topology) against `pylon serve` with native
  TLS: the renewed lineage is installed and served, a wss:// connection stays; a lineage whose
  key does not match its certificate changes nothing; with OCSP stapling on, it fetches the new
  certificate's response and pylon staples it;
- ocsp-fetch.sh against a real `openssl ocsp -index` responder on 127.0.0.1 (support.ocsp): a
  checked response renamed into place as CERT_FILE.ocsp, a certificate naming no responder
  skipped, a responder that is down or answers for another CA refused (nothing written).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest

from support.nginx import local_ca, render, start_nginx, wss_connect
from support.server import REPO_DIR, start_server

TLS_DIR = REPO_DIR / "deploy" / "tls"


def run(*argv, env=None, timeout=60) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    return result


def ok(*argv, **kwargs) -> str:
    result = run(*argv, **kwargs)
    assert result.returncode == 0, f"$ {shlex.join(map(str, argv))}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def sans(cert: Path) -> str:
    return ok("openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName")


def serial(cert: Path) -> str:
    return ok("openssl", "x509", "-in", cert, "-noout", "-serial").strip()


# ---------------------------------------------------------------------------- local CA

def test_local_ca_certificate_is_valid_for_localhost_and_loopback(tmp_path):
    local_ca(tmp_path)
    names = sans(tmp_path / "server.pem")
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names, names
    assert ": OK" in ok("openssl", "verify", "-CAfile", tmp_path / "ca.pem", tmp_path / "server.crt")
    assert "CA:TRUE" in ok("openssl", "x509", "-in", tmp_path / "ca.pem", "-noout", "-ext", "basicConstraints")
    purpose = ok("openssl", "x509", "-in", tmp_path / "server.crt", "-noout", "-purpose")
    assert "SSL server : Yes" in purpose
    assert stat.S_IMODE((tmp_path / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_local_ca_extra_names_and_rerun_keeps_the_ca(tmp_path):
    local_ca(tmp_path)
    ca_before, serial_before = (tmp_path / "ca.pem").read_bytes(), serial(tmp_path / "server.pem")
    local_ca(tmp_path, "pylon.test", "10.1.2.3")
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert serial(tmp_path / "server.pem") != serial_before
    names = sans(tmp_path / "server.pem")
    assert "DNS:pylon.test" in names and "IP Address:10.1.2.3" in names and "DNS:localhost" in names
    assert ": OK" in ok("openssl", "verify", "-CAfile", tmp_path / "ca.pem", tmp_path / "server.crt")


# ---------------------------------------------------------------------------- CSR

@pytest.mark.parametrize("kind, marker", [("rsa", "Private-Key: (2048 bit"), ("ecdsa", "prime256v1")])
def test_key_and_csr(tmp_path, kind, marker):
    ok(TLS_DIR / "csr.sh", kind, tmp_path, "example.com", "www.example.com")
    key, csr = tmp_path / "example.com.key", tmp_path / "example.com.csr"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert marker in ok("openssl", "pkey", "-in", key, "-noout", "-text")
    text = ok("openssl", "req", "-in", csr, "-noout", "-text", "-verify")
    assert "verify OK" in text
    assert "DNS:example.com, DNS:www.example.com" in text
    assert "CN = example.com" in text or "CN=example.com" in text
    # The CSR's public key is the key's.
    assert ok("openssl", "req", "-in", csr, "-noout", "-pubkey") == ok("openssl", "pkey", "-in", key, "-pubout")


def test_csr_usage_errors(tmp_path):
    assert run(TLS_DIR / "csr.sh", "dsa", tmp_path, "example.com").returncode == 2
    assert run(TLS_DIR / "csr.sh", "rsa", tmp_path).returncode == 2


# ---------------------------------------------------------------------------- certbot

def certbot_command(*args, env=None) -> list[str]:
    return shlex.split(ok(TLS_DIR / "certbot-issue.sh", "--print", *args, env=env))


def test_certbot_webroot_command():
    argv = certbot_command("--webroot", "/var/www/letsencrypt", "--staging", "--email", "ops@example.com",
                           "-d", "example.com", "-d", "www.example.com")
    assert argv[:2] == ["certbot", "certonly"]
    assert "--non-interactive" in argv and "--agree-tos" in argv and "--staging" in argv
    assert argv[argv.index("--webroot-path") + 1] == "/var/www/letsencrypt"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-d"] == ["example.com", "www.example.com"]
    assert argv[argv.index("--email") + 1] == "ops@example.com"
    hook = argv[argv.index("--deploy-hook") + 1]
    assert hook.endswith(str(TLS_DIR / "reload-nginx.sh")) and "NGINX_CONF=/etc/nginx/nginx.conf" in hook
    assert "--server" not in argv and "--nginx" not in argv


def test_certbot_nginx_command_for_a_local_acme_server():
    argv = certbot_command("-d", "pylon.test", env={
        "CERTBOT_SERVER": "https://127.0.0.1:14000/dir", "CERTBOT_DIR": "/tmp/certbot-x",
        "NGINX_CONF": "/srv/nginx/nginx.conf"})
    assert "--nginx" in argv and "--staging" not in argv
    assert argv[argv.index("--nginx-server-root") + 1] == "/srv/nginx"
    assert argv[argv.index("--server") + 1] == "https://127.0.0.1:14000/dir"
    assert argv[argv.index("--config-dir") + 1] == "/tmp/certbot-x/config"
    assert "--register-unsafely-without-email" in argv
    assert "NGINX_CONF=/srv/nginx/nginx.conf" in argv[argv.index("--deploy-hook") + 1]


def test_certbot_knows_every_option_used():
    result = run("certbot", "--help", "all", env={"HOME": "/tmp"})
    if result.returncode != 0 and "No such file" in result.stderr:
        pytest.fail("certbot not found: run scripts/deps.sh", pytrace=False)
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    used = set()
    for args in (["--webroot", "/w", "--staging", "--email", "a@b.c"], ["--nginx"]):
        used |= {a for a in certbot_command(*args, "-d", "x.example", env={
            "CERTBOT_SERVER": "https://127.0.0.1:1/dir", "CERTBOT_DIR": "/tmp/c"}) if a.startswith("--")}
    unknown = sorted(option for option in used if option not in help_text)
    assert not unknown, f"options certbot --help all does not list: {unknown}"


def test_certbot_issue_usage_errors():
    assert run(TLS_DIR / "certbot-issue.sh", "--print").returncode == 2
    assert run(TLS_DIR / "certbot-issue.sh", "--bogus", "-d", "x").returncode == 2


# ---------------------------------------------------------------------------- deploy hook

def served_serial(address) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(address, timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    result = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                            capture_output=True, timeout=10)
    return int(result.stdout.decode().strip().split("=")[1], 16)


def test_deploy_hook_reloads_nginx_without_cutting_websockets(tmp_path):
    tls = local_ca(tmp_path / "tls")
    with start_server() as pylon:
        config = render(tmp_path / "nginx", [pylon.address], tls)
        with start_nginx(config) as nginx:
            before = served_serial(nginx.https_address)
            assert before == int(serial(tls / "server.pem").split("=")[1], 16)

            async def scenario():
                async with wss_connect(nginx) as ws:
                    await ws.send("before reload")
                    assert await asyncio.wait_for(ws.recv(), 10) == "before reload"
                    # A renewal: a new certificate in place, then the hook.
                    await asyncio.to_thread(local_ca, tls)
                    out = await asyncio.to_thread(ok, TLS_DIR / "reload-nginx.sh", env={
                        "NGINX_CONF": str(config.conf), "RENEWED_DOMAINS": "localhost"})
                    assert "reloaded nginx" in out
                    deadline = time.monotonic() + 15
                    while await asyncio.to_thread(served_serial, nginx.https_address) == before:
                        assert time.monotonic() < deadline, "nginx still serves the old certificate"
                        await asyncio.sleep(0.1)  # polling the new workers' certificate
                    await ws.send("after reload")
                    assert await asyncio.wait_for(ws.recv(), 10) == "after reload"

            asyncio.run(scenario())
            assert nginx.process.running()
            assert nginx.master_pid() == nginx.process.pid  # reloaded, not restarted


def test_deploy_hook_refuses_a_broken_configuration(tmp_path):
    tls = local_ca(tmp_path / "tls")
    config = render(tmp_path / "nginx", [("127.0.0.1", 1)], tls)
    (tls / "server.pem").write_text("not a certificate\n")
    result = run(TLS_DIR / "reload-nginx.sh", env={"NGINX_CONF": str(config.conf)})
    assert result.returncode != 0
    assert "reloaded" not in result.stdout


def certbot_lineage(directory: Path, tls: Path) -> Path:
    """What certbot leaves in /etc/letsencrypt/live/NAME, from a local-ca.sh directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fullchain.pem").write_bytes((tls / "server.pem").read_bytes())
    (directory / "privkey.pem").write_bytes((tls / "server.key").read_bytes())
    return directory


def test_pylon_deploy_hook_installs_the_renewal_and_reloads_without_cutting_websockets(tmp_path):
    from support.tls import file_serial, served_serial, start_tls_server
    import websockets

    served_dir = local_ca(tmp_path / "served")  # what pylon reads: server.pem, server.key
    with start_tls_server(served_dir, "--tls-watch-interval", "0") as server:
        renewal = local_ca(tmp_path / "renewal")  # a new certificate from another CA
        lineage = certbot_lineage(tmp_path / "live", renewal)

        async def scenario():
            async with websockets.connect(server.url(), ssl=server.context()) as ws:
                out = await asyncio.to_thread(ok, TLS_DIR / "reload-pylon.sh", env={
                    "RENEWED_LINEAGE": str(lineage), "PYLON_TLS_DIR": str(served_dir),
                    "PYLON_PID": str(server.server.pid), "RENEWED_DOMAINS": "localhost"})
                assert "installed the certificate for localhost" in out
                expected = file_serial(renewal / "server.pem")
                deadline = time.monotonic() + 15
                while await asyncio.to_thread(served_serial, server.address) != expected:
                    assert time.monotonic() < deadline, "pylon still serves the old certificate"
                    await asyncio.sleep(0.1)  # polling the certificate new handshakes get
                await ws.send("after renewal")
                assert await asyncio.wait_for(ws.recv(), 10) == "after renewal"
        asyncio.run(scenario())
        assert stat.S_IMODE((served_dir / "server.key").stat().st_mode) == 0o640

        # A lineage whose key belongs to another certificate: refused before anything changes.
        mismatched = certbot_lineage(tmp_path / "bad", renewal)
        (mismatched / "privkey.pem").write_bytes((local_ca(tmp_path / "third") / "server.key").read_bytes())
        before = (served_dir / "server.key").read_bytes()
        result = run(TLS_DIR / "reload-pylon.sh", env={
            "RENEWED_LINEAGE": str(mismatched), "PYLON_TLS_DIR": str(served_dir),
            "PYLON_PID": str(server.server.pid)})
        assert result.returncode != 0 and "does not match" in result.stderr
        assert (served_dir / "server.key").read_bytes() == before


# ---------------------------------------------------------------------------- OCSP responses

def test_ocsp_fetch_writes_a_checked_response_and_skips_a_certificate_without_a_responder(tmp_path):
    from support.ocsp import OcspResponder, ocsp_ca

    plain = local_ca(tmp_path / "plain")
    with OcspResponder(tmp_path / "tls") as responder:
        tls = ocsp_ca(responder)
        out = ok(TLS_DIR / "ocsp-fetch.sh", plain / "server.pem", tls / "server.pem")
        assert f"{plain / 'server.pem'} names no OCSP responder; nothing to staple" in out
        assert not (plain / "server.pem.ocsp").exists()
        response = tls / "server.pem.ocsp"
        assert f"{response}: good" in out
        assert stat.S_IMODE(response.stat().st_mode) == 0o644
        assert not list(tls.glob(".*.new")), "the response is renamed into place"
        checked = ok("openssl", "ocsp", "-respin", response, "-issuer", tls / "ca.pem",
                     "-cert", tls / "server.crt", "-CAfile", tls / "ca.pem")
        assert f"{tls / 'server.crt'}: good" in checked
        assert responder.requests == 1
    # The responder is gone: the fetch fails and the response of before stays.
    before = response.read_bytes()
    result = run(TLS_DIR / "ocsp-fetch.sh", tls / "server.pem")
    assert result.returncode == 1 and "did not answer with a valid response" in result.stderr
    assert response.read_bytes() == before


def test_ocsp_fetch_refuses_a_response_its_issuer_did_not_sign(tmp_path):
    from support.ocsp import OcspResponder, ocsp_ca

    # The certificate names a responder that answers for another CA (unknown serial, other key).
    with OcspResponder(tmp_path / "elsewhere") as responder:
        ocsp_ca(responder)
        tls = local_ca(tmp_path / "tls", ocsp_url=responder.url)
        result = run(TLS_DIR / "ocsp-fetch.sh", tls / "server.pem")
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (tls / "server.pem.ocsp").exists()


def test_pylon_deploy_hook_fetches_the_new_certificates_ocsp_response(tmp_path):
    from support.ocsp import OcspResponder, ocsp_ca, stapled
    from support.server import poll
    from support.tls import file_serial, start_tls_server

    served_dir = local_ca(tmp_path / "served")  # no responder: nothing stapled yet
    with OcspResponder(tmp_path / "renewal") as responder, \
            start_tls_server(served_dir, "--tls-ocsp-stapling", "true",
                             "--tls-watch-interval", "0") as server:
        assert stapled(server.address) is None
        renewal = ocsp_ca(responder)
        out = ok(TLS_DIR / "reload-pylon.sh", env={
            "RENEWED_LINEAGE": str(certbot_lineage(tmp_path / "live", renewal)),
            "PYLON_TLS_DIR": str(served_dir), "PYLON_PID": str(server.server.pid)})
        assert f"{served_dir / 'server.pem.ocsp'}: good" in out
        expected = file_serial(renewal / "server.pem")
        poll(lambda: (stapled(server.address) or {}).get("serial") == expected, 15,
             "pylon to staple the new certificate's response")
        assert stapled(server.address)["status"] == "good"
