"""OCSP for the stapling tests: a real responder, responses made to order, and what a client sees.

`OcspResponder(directory)` answers OCSP requests on 127.0.0.1 for the CA that
`deploy/tls/local-ca.sh --ocsp-url URL DIR` keeps in `directory` (`ocsp_ca` makes it, with the
responder's URL in the certificate): each POST goes through `openssl ocsp -index DIR/index.txt
-reqin ... -respout ...`, OpenSSL's own responder. (`openssl ocsp -port` would listen on every
interface; the HTTP side is Python's, bound to 127.0.0.1.) `revoke` marks the certificates of
the CA revoked in its index.

`signed_response` builds a response with any times (python3-cryptography, signed with the CA's
key): what the responder cannot make, such as one already stale. `stapled` runs `openssl s_client
-status` and returns what the server stapled, `certificate_status_sent` whether a TLS 1.2
handshake carried a CertificateStatus message at all.
"""

from __future__ import annotations

import datetime
import http.server
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from support.nginx import local_ca


class OcspResponder:
    def __init__(self, directory: Path, minutes: int = 60):
        self.directory = directory
        self.minutes = minutes  # nextUpdate of each answer: now + this
        self.requests = 0
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                request = self.rfile.read(int(self.headers["Content-Length"]))
                answer = responder.answer(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: bytes) -> bytes:
        self.requests += 1
        d = self.directory
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "request.der").write_bytes(request)
            subprocess.run(["openssl", "ocsp", "-index", d / "index.txt", "-CA", d / "ca.pem",
                            "-rsigner", d / "ca.pem", "-rkey", d / "ca.key", "-nmin", str(self.minutes),
                            "-reqin", Path(work) / "request.der", "-respout", Path(work) / "response.der"],
                           check=True, capture_output=True, timeout=30)
            return (Path(work) / "response.der").read_bytes()

    def __enter__(self) -> "OcspResponder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def ocsp_ca(responder: OcspResponder, *names: str) -> Path:
    """A (new) server certificate in responder.directory naming the responder's URL."""
    return local_ca(responder.directory, *names, ocsp_url=responder.url)


def revoke(directory: Path) -> None:
    """Marks every certificate of the CA's index revoked, now (openssl ca's database format)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%y%m%d%H%M%SZ")
    index = directory / "index.txt"
    lines = [line.split("\t") for line in index.read_text().splitlines()]
    index.write_text("".join("\t".join(["R", f[1], now, *f[3:]]) + "\n" for f in lines))


def signed_response(directory: Path, next_update: Optional[datetime.timedelta],
                    this_update: datetime.timedelta = datetime.timedelta(0),
                    signer: Optional[Path] = None, digest=hashes.SHA1(),
                    status=ocsp.OCSPCertStatus.GOOD) -> bytes:
    """A response about directory/server.crt (good, or unknown); times are from now; signed by
    the CA of signer (default: the certificate's own CA)."""
    certificate = x509.load_pem_x509_certificate((directory / "server.crt").read_bytes())
    issuer = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    signer = signer or directory
    key = serialization.load_pem_private_key((signer / "ca.key").read_bytes(), None)
    signer_certificate = x509.load_pem_x509_certificate((signer / "ca.pem").read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=certificate, issuer=issuer, algorithm=digest, cert_status=status,
        this_update=now + this_update, next_update=None if next_update is None else now + next_update,
        revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer_certificate)
    if signer_certificate != issuer:  # carried, as a delegated responder's certificate would be
        builder = builder.certificates([signer_certificate])
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def stapled(address: tuple[str, int], server_name: str = "localhost") -> Optional[dict]:
    """What the server staples for a client that asks (s_client -status): None when nothing,
    else {"status": "good"/"revoked", "serial": int, "next_update": "..."}."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"{address[0]}:{address[1]}",
                             "-servername", server_name, "-status"],
                            input="", capture_output=True, text=True, timeout=30)
    out = result.stdout
    assert "OCSP response:" in out, f"s_client did not get through the handshake:\n{out}\n{result.stderr}"
    if "OCSP response: no response sent" in out:
        return None
    return {"status": re.search(r"Cert Status: (\w+)", out).group(1),
            "serial": int(re.search(r"Serial Number: ([0-9A-F]+)", out).group(1), 16),
            "next_update": re.search(r"Next Update: (.+)", out).group(1).strip()}


def certificate_status_sent(address: tuple[str, int], ask: bool) -> bool:
    """Whether a TLS 1.2 handshake (asking for the status or not) got a CertificateStatus."""
    argv = ["openssl", "s_client", "-connect", f"{address[0]}:{address[1]}", "-servername",
            "localhost", "-tls1_2", "-msg"] + (["-status"] if ask else [])
    result = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    assert "Verify return code" in result.stdout, result.stdout + result.stderr
    return "CertificateStatus" in result.stdout


def next_update_of(response: Path) -> datetime.datetime:
    """The nextUpdate of a DER response file (as `openssl ocsp` prints it)."""
    out = subprocess.run(["openssl", "ocsp", "-respin", str(response), "-resp_text", "-noverify"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    text = re.search(r"Next Update: (.+)", out).group(1).strip()
    return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc)
