#!/usr/bin/python3
"""Topic history side by side (issue 14): publish throughput, fan-out latency and recovery time
with history off / memory history / Redis history on 1 and 3 instances, in one run.

    /usr/bin/python3 bench/history_suite.py [--rounds 3] [--subscribers 1000] [--rate 100]
        [--clients 1000] [--missed 100] [--pylon build/pylon] [--topic-bench build/bench/pylon_topic_bench]

Every pylon (`--threads 1`) and the redis-server (no persistence) on core 0, the clients on core 1
(bench/run.py's Server). Per round and case, in an order rotated from round to round so that the
machine's foreign load spreads over the cases:

- publish: `pylon_topic_bench publish`, 4 connections (spread over the instances) with 64
  publishes unacked each, 1 s warm-up + 4 s measured: acked publishes/s; the Redis CPU per
  publish (INFO cpu around the whole run, over every acked publish);
- fan-out: `pylon bench fanout`, --subscribers spread over the instances, 1 publisher at --rate,
  1 s warm-up + 5 s measured: delivery and last-delivery latency, deliveries/s, the offsets check
  (lost, duplicated) and deliveries per Redis CPU second (INFO cpu around the run);
- recover (history cases): `pylon_topic_bench recover`, --clients subscribers over 10 topics
  (spread over the instances) close, 100 publications per topic are published, and all reconnect
  at once: the time until every one has recovered, per-client p50 / p99.

Medians over the rounds and ratios to "memory history". Writes
bench/results/<date>-history-suite.{json,md}; docs/benchmarks.md quotes it.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from benchlib import (ROOT, SERVER_CORE, Server, free_port, loadavg, log, machine,  # noqa: E402
                      markdown_table, median, run_client, today, versions, write_results)
from redis_history import redis_cpu  # noqa: E402
from support.redis import RedisServer  # noqa: E402

HISTORY = ["--namespace", "chat:history_size=1000", "--namespace", "chat:history_ttl=300"]
FANOUT_WARMUP, FANOUT_SECONDS = 1, 5
# name: (engine, instances, topic prefix); "plain:" has no history.
CASES = {
    "history off": ("memory", 1, "plain:"),
    "memory history": ("memory", 1, "chat:"),
    "Redis history, 1 instance": ("redis", 1, "chat:"),
    "Redis history, 3 instances": ("redis", 3, "chat:"),
}


def run_json(command, timeout):
    """run_client, but a client without output stops the suite."""
    data = run_client(command, timeout)
    if data.get("failed"):
        raise RuntimeError(f"{command[0]} {command[1]}: no output; {data['stderr'][-500:]}")
    return data


def pylon_commands(args, engine, instances, redis, prefix, ports):
    commands = []
    for port in ports:
        command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
                   "--log-level", "warn", "--max-publish-rate", "10000000", *HISTORY]
        if engine == "redis":
            command += ["--engine", "redis", "--redis-url", redis.url, "--redis-prefix", prefix]
        commands.append(command)
    return commands


def run_case(args, redis, name, round_index):
    engine, instances, topic_prefix = CASES[name]
    first = free_port(19600 + 10 * round_index)
    ports = [first]
    while len(ports) < instances:
        ports.append(free_port(ports[-1] + 1))
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    url_args = [a for url in urls for a in ("--url", url)]
    redis_prefix = f"suite{round_index}{engine}{instances}:"
    entry = {"case": name, "round": round_index + 1, "loadavg_before": loadavg()}
    with Server(name, pylon_commands(args, engine, instances, redis, redis_prefix, ports), first) as server:
        # publish
        before = redis_cpu(redis)
        entry["publish"] = run_json([args.topic_bench, "publish", *url_args, "--topic",
                                     f"{topic_prefix}publish", "--publishers", "4", "--window", "64",
                                     "--warmup", "1", "--duration", "4"], timeout=120)
        used = redis_cpu(redis) - before
        if engine == "redis" and entry["publish"]["acked_total"]:
            entry["publish"]["redis_cpu_us_per_publish"] = used * 1e6 / entry["publish"]["acked_total"]
        # fan-out
        before = redis_cpu(redis)
        fanout = run_json([args.pylon, "bench", "fanout", *url_args, "--subscribers", str(args.subscribers),
                           "--publishers", "1", "--rate", str(args.rate), "--size", "64",
                           "--topic", f"{topic_prefix}fanout", "--duration", str(FANOUT_SECONDS),
                           "--warmup", str(FANOUT_WARMUP),
                           "--threads", "1", "--pid", ",".join(map(str, server.pids)), "--json", "{json}"],
                          timeout=180)
        used = redis_cpu(redis) - before
        entry["fanout"] = {
            "deliveries": fanout["deliveries"], "expected_deliveries": fanout["expected_deliveries"],
            "delivered_per_second": fanout["delivered_per_second"],
            "delivery_p50_ms": fanout["latency_us"]["p50"] / 1e3,
            "delivery_p99_ms": fanout["latency_us"]["p99"] / 1e3,
            "last_p50_ms": fanout["last_delivery_us"]["p50"] / 1e3,
            "last_p99_ms": fanout["last_delivery_us"]["p99"] / 1e3,
            "offsets": fanout.get("offsets"), "errors": fanout["errors"]["total"],
            "pylon_cpu_us_per_delivery": (fanout["server"]["cpu_seconds"] * 1e6 / fanout["deliveries"]
                                          if fanout.get("server") and fanout["deliveries"] else None),
        }
        if engine == "redis":
            # The Redis CPU covers the whole run: the subscribes (and their history reads), the
            # warm-up and measured publications (paced: rate x 6 s), Redis's own cron; so the
            # deliveries are those of the whole run too, and the figure errs low.
            publications = args.rate * (FANOUT_WARMUP + FANOUT_SECONDS)
            entry["fanout"]["redis_cpu_seconds"] = used
            entry["fanout"]["deliveries_per_redis_cpu_second"] = (
                publications * fanout["subscribers_acked"] / used if used > 0 else None)
        # recover
        if topic_prefix == "chat:":
            entry["recover"] = run_json([args.topic_bench, "recover", *url_args, "--clients", str(args.clients),
                                         "--topics", "10", "--missed", str(args.missed),
                                         "--prefix", f"{topic_prefix}recover{round_index}-"], timeout=180)
    entry["loadavg_after"] = loadavg()
    return entry


def median_of(entries, *path):
    def dig(value):
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return median(dig(entry) for entry in entries)


def number(value, digits=1):
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(result):
    rows = []
    medians = result["medians"]
    base = medians["memory history"]
    for name in CASES:
        m = medians[name]
        ratio = (f"{m['publishes_per_second'] / base['publishes_per_second']:.2f}"
                 if m["publishes_per_second"] and base["publishes_per_second"] else "–")
        rows.append([
            name, number(m['publishes_per_second'], 0), ratio, number(m['redis_cpu_us_per_publish']),
            f"{number(m['delivery_p50_ms'])} / {number(m['delivery_p99_ms'])}",
            f"{number(m['last_p50_ms'])} / {number(m['last_p99_ms'])}", number(m['delivered_per_second'], 0),
            m['offsets'], number(m['deliveries_per_redis_cpu_second'], 0), number(m['recover_all_ms'], 0),
            f"{number(m['recover_p50_ms'], 0)} / {number(m['recover_p99_ms'], 0)}", m['recovered']])
    return markdown_table(["case", "publishes/s", "× memory history", "Redis µs CPU/publish", "delivery p50 / p99 ms",
                           "last p50 / p99 ms", "deliveries/s", "offsets lost+dup", "deliveries per Redis CPU s",
                           "recovery, all (ms)", "recovery p50 / p99 ms", "recovered"], rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--topic-bench", default=os.path.join(ROOT, "build", "bench", "pylon_topic_bench"))
    args = parser.parse_args()
    result = {"machine": machine(), "versions": versions(args.pylon), "loadavg_before": loadavg(),
              "settings": vars(args), "runs": []}
    redis = RedisServer()
    redis.start()
    subprocess.run(["taskset", "-p", "-c", SERVER_CORE, str(redis.proc.pid)], stdout=subprocess.DEVNULL)
    try:
        names = list(CASES)
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                entry = run_case(args, redis, name, round_index)
                log(f"round {round_index + 1} {name}: publish {entry['publish']['publishes_per_second']:.0f}/s, "
                    f"fanout p50 {entry['fanout']['delivery_p50_ms']:.1f} ms, offsets {entry['fanout']['offsets']}, "
                    f"recover {entry.get('recover', {}).get('all_recovered_ms')}")
                result["runs"].append(entry)
    finally:
        redis.kill()
    result["loadavg_after"] = loadavg()
    result["medians"] = {}
    for name in CASES:
        entries = [e for e in result["runs"] if e["case"] == name]
        offsets = [e["fanout"]["offsets"] for e in entries if e["fanout"]["offsets"]]
        recovered = [(e["recover"]["recovered"], e["recover"]["clients"]) for e in entries if "recover" in e]
        result["medians"][name] = {
            "publishes_per_second": median_of(entries, "publish", "publishes_per_second"),
            "redis_cpu_us_per_publish": median_of(entries, "publish", "redis_cpu_us_per_publish"),
            "delivery_p50_ms": median_of(entries, "fanout", "delivery_p50_ms"),
            "delivery_p99_ms": median_of(entries, "fanout", "delivery_p99_ms"),
            "last_p50_ms": median_of(entries, "fanout", "last_p50_ms"),
            "last_p99_ms": median_of(entries, "fanout", "last_p99_ms"),
            "delivered_per_second": median_of(entries, "fanout", "delivered_per_second"),
            "deliveries_per_redis_cpu_second": median_of(entries, "fanout", "deliveries_per_redis_cpu_second"),
            "offsets": (f"{sum(o['lost'] for o in offsets)}+{sum(o['duplicated'] for o in offsets)}"
                        if offsets else "–"),
            "recover_all_ms": median_of(entries, "recover", "all_recovered_ms"),
            "recover_p50_ms": median_of(entries, "recover", "p50_ms"),
            "recover_p99_ms": median_of(entries, "recover", "p99_ms"),
            "recovered": (f"{sum(r for r, _ in recovered)}/{sum(c for _, c in recovered)}"
                          if recovered else "–"),
        }
    table = markdown(result)
    write_results("history-suite", result, f"# Topic history side by side ({today()})\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
