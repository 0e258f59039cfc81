#!/usr/bin/python3
"""Handshake cost of each token algorithm against no authentication (issue 13), in one run.

    /usr/bin/python3 bench/auth_handshake.py [--connections N] [--rounds R] [--pylon PATH]

Cases: no auth, HS256, RS256, PS256, ES256, ES384, EdDSA. In each, `pylon serve --threads 1`
runs pinned to core 0 (bench/run.py's Server) with the key source the algorithm needs (an HMAC
secret file, or a PEM public key), and `pylon bench connect` runs pinned to core 1: N connections
to /ws opened as fast as the server answers (64 handshakes in flight), held 0.1 s, closed, every
upgrade with `Authorization: Bearer <token>` (PyJWT's token; the no-auth server gets an HS256
token too and ignores it, so every request has the same size). Every connection sends the same
token. The plain public-key cases run with `--auth-signature-cache 0`, so each handshake verifies
the signature again (what a token pylon has not seen costs); the "cached" ones with the default
cache, where every handshake after the first finds the signature remembered (a client
reconnecting with its token).

Figures per run: connections/s (opened / seconds until all were settled, from `pylon bench`), and
server CPU per connection = utime + stime of the server (/proc/PID/stat) read before the bench
starts and after the server has closed the last connection, / N: accept, HTTP parse, upgrade
(with the token's verification) and close. Cases are interleaved round by round because the
machine is shared; the table gives the median over the rounds and the ratio to no auth. Each run
binds its own source address (127.0.R.C) so that TIME_WAIT sockets of one run never starve the
next of ports. Writes bench/results/<date>-auth-handshake.{json,md}; docs/benchmarks.md quotes it.
"""

import argparse
import os
import sys
import tempfile
import time
import urllib.request

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, Server, cpu_seconds, free_port, loadavg, log, machine,  # noqa: E402
                      markdown_table, medians, run_client, today, versions, write_results)

SECRET = "an HMAC secret of at least thirty-two bytes, for the benchmark"
PUBLIC_KEY = ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
CASES = ["none", "HS256", *PUBLIC_KEY, *(f"{algorithm} cached" for algorithm in PUBLIC_KEY)]
_loopback = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_connections(port):
    with _loopback.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith('pylon_connections{endpoint="/ws"} '):
                return float(line.split()[1])
    return 0.0


def keys_and_tokens(directory):
    """Per case: the pylon flags of its key source and the token the bench sends."""
    claims = {"sub": "bench", "iat": int(time.time()), "exp": int(time.time()) + 86400,
              "pylon": {"subscribe": ["bench:*"]}}
    secret_file = os.path.join(directory, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET)
    hs256 = jwt.encode(claims, SECRET, algorithm="HS256")
    private = {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    private["PS256"] = private["RS256"]
    private["ES256"] = ec.generate_private_key(ec.SECP256R1())
    private["ES384"] = ec.generate_private_key(ec.SECP384R1())
    private["EdDSA"] = ed25519.Ed25519PrivateKey.generate()
    cases = {"none": ([], hs256),
             "HS256": (["--auth-hmac-secret-file", secret_file], hs256)}
    for algorithm, key in private.items():
        pem = os.path.join(directory, f"{algorithm}.pem")
        with open(pem, "wb") as f:
            f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
        flags = ["--auth-public-key-file", pem]
        token = jwt.encode(claims, key, algorithm=algorithm)
        cases[algorithm] = ([*flags, "--auth-signature-cache", "0"], token)
        cases[f"{algorithm} cached"] = (flags, token)
    return cases


def run_case(args, port, flags, token, source):
    command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
               "--log-level", "warn", *flags]
    with Server("pylon", [command], port) as server:
        pid = server.pids[0]
        before = cpu_seconds(pid)
        data = run_client([args.pylon, "bench", "connect", "--url", f"ws://127.0.0.1:{port}/ws",
                           "--connections", str(args.connections), "--duration", "0.1",
                           "--threads", "1", "--source-address", source,
                           "--header", f"Authorization: Bearer {token}", "--json", "{json}"],
                          timeout=300)
        deadline = time.monotonic() + 30
        while open_connections(port) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server finishes the last closes after the client exits
        cpu = cpu_seconds(pid) - before
    connections = data.get("connections", {})
    return {"opened": connections.get("opened", 0), "failed": connections.get("failed"),
            "rate_per_second": connections.get("rate_per_second", 0.0),
            "handshake_p50_us": data.get("handshake_us", {}).get("p50"),
            "handshake_p99_us": data.get("handshake_us", {}).get("p99"),
            "server_cpu_s": cpu, "cpu_us_per_connection": cpu * 1e6 / args.connections,
            "errors": data.get("errors", {}).get("total"), "failed_run": data.get("failed", False)}


def markdown(document):
    rows = document["summary"]
    base = rows["none"]
    table = []
    for case in CASES:
        r = rows[case]
        cpus = [run["cpu_us_per_connection"] for run in document["runs"][case]]
        extra = r["cpu_us"] - base["cpu_us"]
        table.append([case if case != "none" else "no auth", f"{r['rate']:,.0f}", f"{r['rate'] / base['rate']:.2f} ×",
                      f"{r['cpu_us']:.0f} µs ({min(cpus):.0f}–{max(cpus):.0f})",
                      f"{r['cpu_us'] / base['cpu_us']:.2f} ×", "—" if case == "none" else f"{extra:+.0f} µs"])
    lines = [f"Auth handshake cost, {document['date']} ({document['connections']} connections per "
             f"run, {document['rounds']} rounds interleaved, medians; `bench/auth_handshake.py`)", "",
             markdown_table(["case", "connections/s", "vs no auth", "server CPU per connection (rounds' range)",
                             "vs no auth", "verification (CPU − no auth)"], table)]
    lines += ["", f"Machine: {document['machine']['cpu_model']}, {document['machine']['cpus']} vCPUs, "
              f"{document['machine']['kernel']}; pylon {document['versions']['pylon_commit'][:12]}; "
              f"loadavg {document['loadavg_before']} → {document['loadavg_after']}.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--port", type=int, default=19400)
    args = parser.parse_args()
    document = {"date": today(), "connections": args.connections, "rounds": args.rounds,
                "machine": machine(), "versions": versions(args.pylon), "loadavg_before": loadavg(),
                "runs": {case: [] for case in CASES}}
    with tempfile.TemporaryDirectory(prefix="pylon-auth-bench-") as directory:
        cases = keys_and_tokens(directory)
        for round_ in range(args.rounds):
            for index, case in enumerate(CASES):
                port = free_port(args.port)
                flags, token = cases[case]
                result = run_case(args, port, flags, token, f"127.0.{round_ + 1}.{index + 1}")
                log(f"round {round_ + 1} {case}: {result['rate_per_second']:.0f}/s, "
                    f"{result['cpu_us_per_connection']:.1f} us CPU per connection, "
                    f"{result['opened']} opened, errors {result['errors']}")
                document["runs"][case].append(result)
    document["loadavg_after"] = loadavg()
    document["summary"] = {}
    for case, runs in document["runs"].items():
        median = medians(runs, ("rate_per_second", "cpu_us_per_connection"))
        document["summary"][case] = {"rate": median["rate_per_second"], "cpu_us": median["cpu_us_per_connection"]}
    text = markdown(document)
    write_results("auth-handshake", document, text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
