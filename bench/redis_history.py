#!/usr/bin/python3
"""Publish cost on the Redis engine with topic history off and on (issue 14), in one run.

    /usr/bin/python3 bench/redis_history.py [--publishes N] [--rounds R] [--pylon PATH]

One redis-server (no persistence) and one `pylon serve --engine redis --threads 1` pinned to core
0 (bench/run.py's Server); a Python WebSocket client on /ws publishes N small JSON messages with an
id, 200 in flight (200 frames written at once, then their 200 acks read), to a topic without
history ("history off": pylon PUBLISHes, the ack is immediate) and to a topic of a namespace with
history_size = 1000 ("history on": one EVALSHA of the append script per publish, the ack after
Redis answered). No subscriber: the figures are the publish path's. Per case: publishes/s (the
Python client is the bottleneck for "off"), Redis CPU per publish (used_cpu_user + used_cpu_sys of
INFO cpu over the run) and pylon CPU per publish (/proc/PID/stat). Cases interleaved round by round;
medians. Writes bench/results/<date>-redis-history.{json,md}; docs/benchmarks.md quotes it.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from benchlib import (ROOT, Server, cpu_seconds, free_port, loadavg, log, machine,  # noqa: E402
                      markdown_table, medians, today, versions, write_results)
from support.pubsub import PubSubClient, publish_text  # noqa: E402
from support.redis import RedisServer  # noqa: E402
from support.wsclient import OP_TEXT, build_frame  # noqa: E402

WINDOW = 200
CASES = {"history off": "plain:bench", "history on": "chat:bench"}


def redis_cpu(redis):
    info = dict(line.split(":", 1) for line in (redis.cli("INFO", "cpu") or "").splitlines()
                if ":" in line)
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_case(args, redis, port, topic, round_index):
    command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
               "--log-level", "warn", "--max-publish-rate", "10000000",
               "--engine", "redis", "--redis-url", redis.url, "--redis-prefix", f"bench{round_index}:",
               "--namespace", "chat:history_size=1000", "--namespace", "chat:history_ttl=300"]
    with Server("pylon", [command], port) as server:
        client = PubSubClient.connect(("127.0.0.1", port))
        deadline = time.monotonic() + 15
        while True:  # the engine connects just after the listener
            client.publish(topic, b'"probe"', id=0)
            value, _ = client.recv_json()
            if value.get("type") == "ack" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        pid = server.pids[0]
        pylon_before, redis_before, started = cpu_seconds(pid), redis_cpu(redis), time.monotonic()
        for first in range(0, args.publishes, WINDOW):
            count = min(WINDOW, args.publishes - first)
            client.send_raw(b"".join(
                build_frame(OP_TEXT, publish_text(topic, b'{"n":%d}' % n, id=n))
                for n in range(first, first + count)))
            for _ in range(count):
                value, raw = client.recv_json(timeout=60)
                assert value.get("type") == "ack", raw
        seconds = time.monotonic() - started
        pylon_cpu, redis_used = cpu_seconds(pid) - pylon_before, redis_cpu(redis) - redis_before
        client.close()
    return {"publishes": args.publishes, "seconds": seconds,
            "publishes_per_second": args.publishes / seconds,
            "redis_cpu_us_per_publish": redis_used * 1e6 / args.publishes,
            "pylon_cpu_us_per_publish": pylon_cpu * 1e6 / args.publishes}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--publishes", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    args = parser.parse_args()
    result = {"machine": machine(), "versions": versions(args.pylon), "loadavg_before": loadavg(),
              "publishes": args.publishes, "window": WINDOW, "rounds": {name: [] for name in CASES}}
    redis = RedisServer()
    redis.start()
    try:
        for round_index in range(args.rounds):
            for name, topic in CASES.items():
                run = run_case(args, redis, free_port(19500), topic, round_index)
                log(f"round {round_index + 1} {name}: {run['publishes_per_second']:.0f}/s, redis "
                    f"{run['redis_cpu_us_per_publish']:.1f} µs, pylon {run['pylon_cpu_us_per_publish']:.1f} µs")
                result["rounds"][name].append(run)
    finally:
        redis.kill()
    result["loadavg_after"] = loadavg()
    rows = []
    for name, runs in result["rounds"].items():
        median = medians(runs, ("publishes_per_second", "redis_cpu_us_per_publish", "pylon_cpu_us_per_publish"))
        result.setdefault("medians", {})[name] = median
        rows.append([name, f"{median['publishes_per_second']:,.0f}", f"{median['redis_cpu_us_per_publish']:.1f} µs",
                     f"{median['pylon_cpu_us_per_publish']:.1f} µs"])
    table = markdown_table(["case", "publishes/s", "Redis CPU per publish", "pylon CPU per publish"], rows)
    write_results("redis-history", result,
                  f"# Redis engine: publish with history off and on ({today()})\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
