#!/usr/bin/python3
"""Recovery time: 1,000 clients reconnecting at once with 100 missed publications each (issue 14,
"What is measured"), on the memory engine and on the Redis engine.

    /usr/bin/python3 bench/recovery.py [--clients 1000] [--topics 20] [--missed 100] [--rounds 3]

One `pylon serve --threads 2` pinned to core 0 (bench/run.py's Server), with history on the `roll`
namespace; for the Redis case one redis-server (no persistence) too. The clients are the
rolling-restart test's (tests/support/rolling.py Subscriber: Python `websockets`, plain ws, one
topic each, `clients / topics` per topic). Each round: every client subscribes; all disconnect;
`missed` publications per topic are published (and acked) meanwhile; then all reconnect at once,
each resubscribing with `recover` from the last offset it saw. Measured from the first reconnect to
the moment every client has its ack (`recovered:true`) and has received every missed publication:
wall time, and the CPU seconds pylon and Redis spent in that window (the Python client, on the
other core, is the slowest part: its CPU seconds are reported too). Medians of the rounds. Writes
bench/results/<date>-recovery.{json,md}; docs/benchmarks.md quotes it.
"""

import argparse
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from benchlib import (ROOT, Server, cpu_seconds, free_port, loadavg, log, machine,  # noqa: E402
                      markdown_table, medians, today, versions, write_results)
from redis_history import redis_cpu  # noqa: E402
from support.deflate import metrics  # noqa: E402
from support.pubsub import api_key_args, dumps, http_publish  # noqa: E402
from support.redis import RedisServer  # noqa: E402
from support.rolling import Subscriber, until  # noqa: E402

API_KEY = "bench-recovery-key"


def pylon_command(args, port, redis, round_index):
    command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "2", "--log-level", "warn",
               "--namespace", "roll:history_size=1000", "--namespace", "roll:history_ttl=300",
               *api_key_args(API_KEY, name="bench")]
    if redis is not None:
        command += ["--engine", "redis", "--redis-url", redis.url, "--redis-prefix", f"recovery{round_index}:"]
    return command


async def one_round(args, port, pids, redis):
    topics = [f"roll:topic-{i}" for i in range(args.topics)]
    url = f"ws://127.0.0.1:{port}/ws"
    clients = [Subscriber(url, None, topics[i % len(topics)]) for i in range(args.clients)]

    def connect_all():
        return [asyncio.create_task(c.run()) for c in clients]

    async def disconnect_all(tasks):
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await until(lambda: metrics(("127.0.0.1", port)).get('pylon_connections{endpoint="/ws"}', 0) == 0,
                    60, "every client to be gone")

    tasks = connect_all()
    await until(lambda: all(c.subscribed.is_set() for c in clients), 120, "every client to subscribe")
    await disconnect_all(tasks)
    for n in range(args.missed):  # acked one by one: each is stored before the reconnect
        for topic in topics:
            response = await asyncio.to_thread(http_publish, ("127.0.0.1", port),
                                               dumps({"topic": topic, "data": n}), API_KEY)
            assert response.status == 200, response.body
    for c in clients:
        c.subscribed.clear()
    pylon_before = sum(cpu_seconds(pid) for pid in pids)
    redis_before = redis_cpu(redis) if redis else 0.0
    client_before = time.process_time()
    started = time.monotonic()
    tasks = connect_all()
    await until(lambda: all(c.subscribed.is_set() and c.offset >= args.missed for c in clients), 300,
                "every client to recover")
    seconds = time.monotonic() - started
    result = {"seconds": seconds, "pylon_cpu_s": sum(cpu_seconds(pid) for pid in pids) - pylon_before,
              "redis_cpu_s": (redis_cpu(redis) - redis_before) if redis else 0.0,
              "client_cpu_s": time.process_time() - client_before}
    await disconnect_all(tasks)
    recovered = [c.recovered[-1] for c in clients]
    assert all(r is True for r in recovered), recovered
    assert all([o for o, _ in c.seen] == list(range(1, args.missed + 1)) for c in clients)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    args = parser.parse_args()
    result = {"machine": machine(), "versions": versions(args.pylon), "loadavg_before": loadavg(),
              "clients": args.clients, "topics": args.topics, "missed": args.missed,
              "rounds": {"memory": [], "redis": []}}
    redis = RedisServer()
    redis.start()
    try:
        for round_index in range(args.rounds):
            for engine in ("memory", "redis"):
                port = free_port(19600)
                engine_redis = redis if engine == "redis" else None
                with Server("pylon", [pylon_command(args, port, engine_redis, round_index)], port) as server:
                    run = asyncio.run(one_round(args, port, server.pids, engine_redis))
                log(f"round {round_index + 1} {engine}: {run['seconds']:.2f} s, pylon {run['pylon_cpu_s']:.2f} s "
                    f"CPU, redis {run['redis_cpu_s']:.2f} s, client {run['client_cpu_s']:.2f} s")
                result["rounds"][engine].append(run)
    finally:
        redis.kill()
    result["loadavg_after"] = loadavg()
    rows = []
    for engine, runs in result["rounds"].items():
        median = medians(runs, ("seconds", "pylon_cpu_s", "redis_cpu_s", "client_cpu_s"))
        result.setdefault("medians", {})[engine] = median
        rows.append([engine] + [f"{median[key]:.2f} s" for key in ("seconds", "pylon_cpu_s", "redis_cpu_s",
                                                                 "client_cpu_s")])
    table = markdown_table(["engine", f"all {args.clients} recovered in", "pylon CPU", "Redis CPU", "client CPU"],
                           rows)
    write_results("recovery", result, f"# Recovery of {args.clients} clients with {args.missed} missed "
                  f"publications each ({today()})\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
