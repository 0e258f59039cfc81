"""Topic history on the Redis engine (docs/cluster.md "History"): several pylon instances on one
real redis-server share each topic's offsets and epoch. Publishes on every instance get offsets
without gaps, acked only once Redis stored them; a subscriber that reconnects to another instance
recovers exactly what it missed; Redis restarted with its append-only file keeps offsets and
epoch; Redis killed and restarted empty gives a new epoch (recovered:false) and publishes during
the outage are refused, never acked; an instance whose subscriber link to Redis drops fills the
gap for its subscribers. Nothing is skipped: without redis-server the suite fails."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from support.deflate import metrics
from support.pubsub import (PubSubClient, api_key_args, dumps, http_publish, receive_messages, request_text,
                            subscribe_at)
from support.redis import RedisServer, start_redis, wait_for
from support.server import start_server

API_KEY = "history-redis-key"
NAMESPACES = ["chat:history_size=1000", "chat:history_ttl=300",
              "prices:history_size=10", "prices:history_ttl=300", "prices:recovery=cache"]


@contextlib.contextmanager
def cluster(redis: RedisServer, count: int = 3, threads: int = 2):
    with contextlib.ExitStack() as stack:
        servers = []
        for _ in range(count):
            args = ["--threads", str(threads), "--max-publish-rate", "100000", *api_key_args(API_KEY),
                    "--engine", "redis", "--redis-url", redis.url, "--redis-prefix", "hist:"]
            for rule in NAMESPACES:
                args += ["--namespace", rule]
            servers.append(stack.enter_context(start_server(*args)))
        for server in servers:
            wait_for(lambda: publish_http(server, "plain", 0) is not None,
                     what=f"the engine of :{server.port} to accept publishes")
        yield servers


@pytest.fixture(scope="module")
def redis():
    with start_redis() as running:
        yield running


@pytest.fixture(scope="module")
def servers(redis):
    with cluster(redis) as running:
        yield running


@pytest.fixture
def name(request):
    return request.node.name[-50:]


def publish_http(server, topic, data):
    """The publish's answer; None when it was refused as engine_unavailable (503)."""
    response = http_publish(server.address, dumps({"topic": topic, "data": data}), API_KEY)
    if response.status == 503:
        assert json.loads(response.body)["error"] == "engine_unavailable", response.body
        return None
    assert response.status == 200, response.body
    return json.loads(response.body)


def test_offsets_are_shared_by_every_instance_and_acked_once_stored(servers, name):
    topic = f"chat:{name}"
    subscribers = [PubSubClient.connect(server.address) for server in servers]
    positions = [subscribe_at(client, [topic])[1][topic] for client in subscribers]
    assert all(position["offset"] == 0 for position in positions)
    assert len({position["epoch"] for position in positions}) == 1  # one stream in Redis
    publishers = [PubSubClient.connect(server.address) for server in servers]
    rounds = 30
    acked = []
    for n in range(rounds):
        for index, publisher in enumerate(publishers):
            publisher.publish(topic, dumps({"ws": index, "n": n}), id=f"{index}-{n}")
    for publisher in publishers:
        for _ in range(rounds):
            value, raw = publisher.recv_json()
            assert value["type"] == "ack" and set(value) == {"type", "id", "offset"}, raw
            acked.append(value["offset"])
    answer = publish_http(servers[1], topic, {"http": 1})
    acked.append(answer["offset"])
    total = rounds * len(publishers) + 1
    assert sorted(acked) == list(range(1, total + 1))
    streams = [receive_messages(client, total) for client in subscribers]
    for messages in streams:
        assert [m["offset"] for m in messages] == list(range(1, total + 1))
        assert messages == streams[0]  # the same order on every instance
    for index in range(len(publishers)):  # each publisher's own order is kept
        assert [m["data"]["n"] for m in streams[0] if m["data"].get("ws") == index] == list(range(rounds))
    for client in subscribers + publishers:
        client.close()


def test_a_subscriber_reconnecting_to_another_instance_recovers_exactly_what_it_missed(servers, name):
    topic = f"chat:{name}"
    first = PubSubClient.connect(servers[0].address)
    _, positions = subscribe_at(first, [topic])
    epoch = positions[topic]["epoch"]
    for n in range(3):
        publish_http(servers[0], topic, n)
    seen = receive_messages(first, 3)
    first.close()
    for n in range(3, 20):  # published on the other instances while it is away
        publish_http(servers[1 + n % 2], topic, n)
    again = PubSubClient.connect(servers[2].address)
    missed, positions = subscribe_at(again, [topic], recover={topic: {"offset": seen[-1]["offset"], "epoch": epoch}})
    assert positions[topic] == {"offset": 20, "epoch": epoch, "recovered": True}
    assert [m["data"] for m in missed] == list(range(3, 20))
    assert [m["offset"] for m in missed] == list(range(4, 21))
    publish_http(servers[0], topic, 20)
    assert [m["offset"] for m in receive_messages(again, 1)] == [21]  # then live, nothing twice
    # A position the stream never gave, and another epoch: not recovered, the position told.
    third = PubSubClient.connect(servers[1].address)
    missed, positions = subscribe_at(third, [topic], recover={topic: {"offset": 3, "epoch": "other"}})
    assert missed == [] and positions[topic] == {"offset": 21, "epoch": epoch, "recovered": False}
    again.close()
    third.close()


def test_http_publishes_pipelined_on_one_connection_are_answered_in_order(servers, name):
    """Each answer waits for Redis; the requests behind it wait for that answer."""
    topic = f"chat:{name}"

    def request(n):
        body = dumps({"topic": topic, "data": n})
        return (f"POST /api/publish HTTP/1.1\r\nHost: pylon\r\nAuthorization: Bearer {API_KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(servers[0].address, timeout=15) as connection:
        connection.sendall(b"".join(request(n) for n in range(5)))
        received = b""
        deadline = time.monotonic() + 15
        while received.count(b'"offset":') < 5 and time.monotonic() < deadline:
            received += connection.recv(65536)
    assert received.count(b"HTTP/1.1 200 ") == 5, received
    assert [int(n) for n in re.findall(rb'"offset":(\d+)', received)] == [1, 2, 3, 4, 5]


def test_a_subscribe_unsubscribed_before_its_history_read_returns_is_still_acked(servers, name):
    topic = f"chat:{name}"
    client = PubSubClient.connect(servers[0].address)
    client.send_text(request_text("subscribe", topics=[topic], id=1))
    client.send_text(request_text("unsubscribe", topics=[topic], id=2))  # before Redis answers
    first, raw = client.recv_json()
    assert first.get("type") == "ack" and first.get("id") == 1, raw
    second, raw = client.recv_json()
    assert second == {"type": "ack", "id": 2}, raw
    publish_http(servers[1], topic, "after")  # nothing more comes for it
    client.sync()
    client.close()


def test_cache_mode_recovers_the_latest_value_from_redis(servers, name):
    topic = f"prices:{name}"
    for n in range(5):
        publish_http(servers[0], topic, n)
    client = PubSubClient.connect(servers[1].address)
    missed, positions = subscribe_at(client, [topic], recover={topic: {"offset": 0, "epoch": "unknown"}})
    assert [m["data"] for m in missed] == [4] and positions[topic]["recovered"] is True
    client.close()


def redis_subscriber_link_ids(redis: RedisServer, subscriptions: int) -> list[str]:
    """The client ids of Redis's pub/sub connections subscribed to `subscriptions` channels."""
    listing = redis.cli("CLIENT", "LIST", "TYPE", "pubsub") or ""
    return [re.search(r"\bid=(\d+)", line).group(1) for line in listing.splitlines()
            if re.search(rf"\bsub={subscriptions}\b", line)]


def test_an_instance_whose_redis_link_dropped_fills_the_gap(name):
    topic = f"chat:{name}"
    with start_redis() as redis, cluster(redis, count=2) as (a, b):
        subscriber = PubSubClient.connect(a.address)
        # Instance a's subscriber link alone has #control and three topics: found by that count.
        subscribe_at(subscriber, [topic, f"plain:{name}-1", f"plain:{name}-2"])
        wait_for(lambda: len(redis_subscriber_link_ids(redis, 4)) == 1, what="a's subscriber link")
        publisher = PubSubClient.connect(b.address)
        total = 400
        stop_killing = threading.Event()

        def kill_a_link():
            while not stop_killing.is_set():
                for link in redis_subscriber_link_ids(redis, 4):
                    redis.cli("CLIENT", "KILL", "ID", link)
                    stop_killing.set()
        killer = threading.Thread(target=kill_a_link)
        for n in range(total):
            if n == 50:
                killer.start()
            publisher.publish(topic, str(n), id=n)
            value, raw = publisher.recv_json()
            assert value == {"type": "ack", "id": n, "offset": n + 1}, raw
        killer.join(30)
        messages = receive_messages(subscriber, total)
        assert [m["offset"] for m in messages] == list(range(1, total + 1))
        assert [m["data"] for m in messages] == list(range(total))
        counters = metrics(a.address)
        assert counters["pylon_engine_disconnects_total"] >= 1
        assert counters["pylon_history_gap_reads_total"] >= 1
        assert counters["pylon_history_gap_lost_total"] == 0
        subscriber.close()
        publisher.close()


def test_redis_restarted_with_its_aof_keeps_offsets_and_epoch(tmp_path, name):
    topic = f"chat:{name}"
    with start_redis(aof_dir=str(tmp_path)) as redis, cluster(redis, count=2) as (a, b):
        first = PubSubClient.connect(a.address)
        _, positions = subscribe_at(first, [topic])
        epoch = positions[topic]["epoch"]
        for n in range(5):
            publish_http(a, topic, n)
        receive_messages(first, 5)
        first.close()
        redis.kill()
        redis.start()
        wait_for(lambda: publish_http(b, topic, 5) is not None, what="the engine back after the restart")
        again = PubSubClient.connect(b.address)
        missed, positions = subscribe_at(again, [topic], recover={topic: {"offset": 5, "epoch": epoch}})
        assert positions[topic] == {"offset": 6, "epoch": epoch, "recovered": True}
        assert [(m["offset"], m["data"]) for m in missed] == [(6, 5)]
        again.close()


def test_redis_lost_gives_a_new_epoch_and_publishes_during_the_outage_are_refused(name):
    topic = f"chat:{name}"
    with start_redis() as redis, cluster(redis, count=2) as (a, b):
        first = PubSubClient.connect(a.address)
        _, positions = subscribe_at(first, [topic])
        old_epoch = positions[topic]["epoch"]
        publish_http(a, topic, "before")
        receive_messages(first, 1)
        redis.kill()
        # Refused on both protocols while Redis is away: never acked. Both instances must have seen
        # it go first: one that has not yet accepts the publish and keeps it until Redis is back.
        wait_for(lambda: all(metrics(s.address).get("pylon_engine_up") == 0 for s in (a, b)),
                 what="both instances to see Redis gone")
        assert publish_http(b, topic, "during") is None
        first.publish(topic, dumps("during"), id="during")
        value, raw = first.recv_json()
        assert value.get("code") == "engine_unavailable" and value.get("id") == "during", raw
        redis.start()  # empty: no persistence
        wait_for(lambda: publish_http(b, topic, "after") is not None, what="the engine back")
        again = PubSubClient.connect(b.address)
        missed, positions = subscribe_at(again, [topic], recover={topic: {"offset": 1, "epoch": old_epoch}})
        position = positions[topic]
        assert position["recovered"] is False and position["epoch"] != old_epoch
        assert position["offset"] == 1 and missed == []  # "after", the new stream's first
        assert '"data":"during"' not in (redis.cli("XRANGE", f"hist:history:{topic}", "-", "+") or "")
        again.close()
        first.close()


@pytest.mark.parametrize("round_", range(3))
def test_a_publish_waiting_for_redis_when_sigterm_comes_is_answered(round_):
    """SIGTERM while an HTTP publish waits for Redis to store it (its answer deferred): the drain
    owes it its answer and waits, although no WebSocket keeps it going. The engine runs on the
    first of the server's eight loops, which must outlive the others' answers: three rounds, so
    that the publish lands on another loop in all but 1 in 512 runs. It is acked with its offset
    once Redis answers, then the server exits."""
    topic = f"chat:drain-{round_}"
    with start_redis() as redis, cluster(redis, count=1, threads=8) as (server,):
        answers = []
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            publisher = threading.Thread(target=lambda: answers.append(publish_http(server, topic, "held")))
            publisher.start()
            time.sleep(0.3)  # the publish is read and waits for Redis
            server.signal(signal.SIGTERM)
            time.sleep(1.0)  # past the drain's listener grace (0.25 s)
            assert server.running(), "the drain did not wait for the publish's answer"
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        publisher.join(30)
        assert answers and answers[0]["offset"] == 1, answers
        assert server.wait(timeout=30) == 0


def test_a_websocket_publish_waiting_for_redis_is_acked_before_the_drain_closes_it():
    """SIGTERM while a WebSocket publish waits for Redis to store it: the drain's 1001 waits for
    the ack (else the client could not tell whether its message was stored); both come once
    Redis answers, the ack first."""
    with start_redis() as redis, cluster(redis, count=1) as (server,):
        client = PubSubClient.connect(server.address)
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            client.publish("chat:drain-ws", dumps("held"), id="held")
            time.sleep(0.3)  # the publish is read and waits for Redis
            server.signal(signal.SIGTERM)
            time.sleep(1.0)  # past the listener's grace, when the 1001 would be due
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        value, raw = client.recv_json()
        assert value == {"type": "ack", "id": "held", "offset": 1}, raw
        client.expect_close(1001, eof=False)
        client.send_close(1001)
        client.close()
        assert server.wait(timeout=30) == 0
