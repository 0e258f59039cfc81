#!/usr/bin/python3
"""What a deflate bomb costs the server in memory: peak and lasting RSS growth (docs/benchmarks.md
"Deflate bomb: memory").

    /usr/bin/python3 bench/deflate_bomb.py [--pylon LABEL=PATH ...] [--rounds 3] [--bombs 3]
                                           [--modes shared,dedicated] [--sizes 1g,64m,17m]

Each bomb is one binary message of zeros compressed with permessage-deflate: `1g` inflates to
1 GiB from 1.0 MiB (one 1 MiB frame, several reads: the message is inflated piece by piece),
`64m` to 64 MiB from 65 KiB, `17m` to 17 MiB from 17 KiB (a frame that comes in one read:
inflated in the loop's own buffer). pylon runs as bench/run.py runs
it (`--threads 1`, the default max_message_size of 16 MiB, log level warn) with
`--compression MODE`, pinned to core 0. Per server, first what any server that has served has
done: a compressed echo of 1 MiB of random bytes (the loop's receive buffers, malloc's heap and
the compressors have held a large message) and one frame refused (the logger has written a
warning); 3 s later (the receive ring is back to its standing size) and after one small echo, its
VmRSS is the baseline; then `--bombs` bombs of each size, one after the other, each on a new connection: the
close code and the seconds to it, the peak growth (VmHWM − baseline, VmHWM reset before each bomb
with `5 > /proc/PID/clear_refs`) and the growth that stays (VmRSS − baseline, 1 s after the close
and after one more echo). Servers (every `--pylon`) alternate within each round. Results:
bench/results/<date>-deflate-bomb.json, and the table on stdout.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import RESULTS, ROOT, SERVER_CORE, free_port, loadavg, log, machine  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests"))
from support.deflate import compressed_frame  # noqa: E402
from support.wsclient import OP_BINARY, RSV1, WsClient, build_frame  # noqa: E402

MIB = 1 << 20
SIZES = {"1g": 1024, "64m": 64, "17m": 17}  # MiB of zeros


def bomb(mebibytes):
    """`mebibytes` MiB of zeros as one raw-deflate message (tail removed, RFC 7692 §7.2.1): the
    same 1 MiB block repeated, each ended by a full flush, so it is built in a few milliseconds."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return (block * mebibytes)[:-4]


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def connect(port):
    client = WsClient.connect(("127.0.0.1", port), "/ws/echo",
                              headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    assert client.handshake_response.header("Sec-WebSocket-Extensions"), "deflate not agreed"
    return client


def echo(port, message=b"warm " * 2000):
    client = connect(port)
    client.send_raw(compressed_frame(OP_BINARY, message))
    frame = client.recv_frame(10)
    assert frame.opcode == OP_BINARY, frame
    client.close_cleanly()


def serve_once(port):
    """What a server that has served has done: held a large message, refused a frame."""
    echo(port, os.urandom(MIB))
    client = connect(port)
    client.send_raw(build_frame(OP_BINARY, b"unmasked", mask=False))
    assert client.recv_frame(10).close_code == 1002
    client.close()
    time.sleep(3)
    echo(port)


def run_server(pylon, mode, port, payloads, bombs):
    command = ["taskset", "-c", SERVER_CORE, pylon, "serve", "--listen", f"127.0.0.1:{port}",
               "--threads", "1", "--log-level", "warn", "--compression", mode]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.time() + 15
        while True:
            try:
                echo(port)
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{pylon} does not serve on {port}")
                time.sleep(0.1)
        serve_once(port)
        baseline = status(process.pid, "VmRSS")
        runs = []
        for name, payload in payloads.items():
            for _ in range(bombs):
                with open(f"/proc/{process.pid}/clear_refs", "w") as f:
                    f.write("5")  # VmHWM := VmRSS
                client = connect(port)
                started = time.time()
                frame = build_frame(OP_BINARY, payload, rsv=RSV1)
                try:
                    client.send_raw(frame)
                except OSError:
                    pass  # the server may close before it has read the whole frame
                close = client.recv_frame(30)
                seconds = time.time() - started
                peak = status(process.pid, "VmHWM") - baseline
                client.close()
                time.sleep(1)
                echo(port)
                runs.append({"bomb": name, "close_code": close.close_code, "seconds": round(seconds, 3),
                             "peak_growth_bytes": peak,
                             "after_growth_bytes": status(process.pid, "VmRSS") - baseline})
        return {"baseline_rss_bytes": baseline, "bombs": runs}
    finally:
        process.terminate()
        process.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pylon", action="append", metavar="LABEL=PATH",
                        help="a binary to measure (repeatable); default: build/pylon")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bombs", type=int, default=3, help="bombs of each size per server")
    parser.add_argument("--modes", default="shared,dedicated")
    parser.add_argument("--sizes", default="1g,64m,17m")
    parser.add_argument("--port", type=int, default=19900)
    args = parser.parse_args()
    binaries = dict(p.split("=", 1) for p in (args.pylon or [f"pylon={ROOT}/build/pylon"]))
    payloads = {name: bomb(SIZES[name]) for name in args.sizes.split(",")}
    for name, payload in payloads.items():
        log(f"bomb {name}: {SIZES[name]} MiB from {len(payload)} bytes")
    document = {"date": datetime.date.today().isoformat(), "machine": machine(),
                "binaries": binaries, "bomb_compressed_bytes": {n: len(p) for n, p in payloads.items()},
                "runs": []}
    port = args.port
    for round_number in range(1, args.rounds + 1):
        for mode in args.modes.split(","):
            for label, path in binaries.items():
                port = free_port(port + 1)
                entry = {"round": round_number, "server": label, "mode": mode,
                         "loadavg_before": loadavg()}
                entry.update(run_server(os.path.abspath(path), mode, port, payloads, args.bombs))
                document["runs"].append(entry)
                for run in entry["bombs"]:
                    log(f"round {round_number} {label} {mode} {run['bomb']}: close {run['close_code']} "
                        f"in {run['seconds']} s, peak +{run['peak_growth_bytes'] / MIB:.1f} MiB, "
                        f"after +{run['after_growth_bytes'] / MIB:.1f} MiB")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{document['date']}-deflate-bomb.json"), "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    print("| server | mode | bomb | close codes | peak growth MiB (median, max) | "
          "growth after MiB (median, max) | s to close (median) |")
    print("|---|---|---|---|---|---|---|")
    for label in binaries:
        for mode in args.modes.split(","):
            for name in payloads:
                runs = [b for r in document["runs"] if r["server"] == label and r["mode"] == mode
                        for b in r["bombs"] if b["bomb"] == name]
                peaks = [b["peak_growth_bytes"] / MIB for b in runs]
                afters = [b["after_growth_bytes"] / MIB for b in runs]
                codes = sorted({b["close_code"] for b in runs})
                print(f"| {label} | {mode} | {name} | {', '.join(map(str, codes))} | "
                      f"{statistics.median(peaks):.1f}, {max(peaks):.1f} | "
                      f"{statistics.median(afters):.1f}, {max(afters):.1f} | "
                      f"{statistics.median(b['seconds'] for b in runs):.2f} |")


if __name__ == "__main__":
    main()
