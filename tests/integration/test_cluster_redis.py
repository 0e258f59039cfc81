"""Several pylon instances sharing topics through a real Redis (issue 8, docs/cluster.md).

Three `pylon serve --engine redis` on one `redis-server` started by the test on a free port:
subscribers spread over the three receive every message published on any of them, in order,
exactly once (byte streams compared in bulk as in test_pubsub_fanout.py); HTTP publish on one
reaches WebSocket subscribers on the others; Redis killed and restarted mid-run; PUBSUB NUMSUB
follows local interest. Nothing is skipped: without redis-server the suite fails.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

from support.pubsub import PubSubClient, api_key_args, http_publish, message_frame, publish_text, published_to
from support.redis import RedisServer, start_redis, wait_for
from support.server import http_get_status, start_server
from support.wsclient import OP_TEXT, build_frame, connect_many, echo_check, expect_streams

API_KEY = "cluster-test-key"
TIMEOUT = 300.0


def engine_ready(server) -> bool:
    return http_get_status(server.host, server.port, "/readyz") == 200


@contextlib.contextmanager
def cluster(redis: RedisServer, prefix: str, count: int = 3, requires_engine=None) -> Iterator[list]:
    """`count` instances on `redis`, each ready (engine connected) before this yields."""
    requires_engine = requires_engine or [True] * count
    with contextlib.ExitStack() as stack:
        servers = []
        for requires in requires_engine:
            args = ["--threads", "2", "--ping-interval", "3600", "--max-publish-rate", "1000000",
                    "--max-backpressure", str(8 << 20), *api_key_args(API_KEY),
                    "--engine", "redis", "--redis-url", redis.url, "--redis-prefix", prefix,
                    "--readyz-requires-engine", "true" if requires else "false"]
            servers.append(stack.enter_context(start_server(*args)))
        for server in servers:
            wait_for(lambda: publish_accepted(server), what=f"the engine of :{server.port} to accept publishes")
        yield servers


def publish_accepted(server, topic: str = "cluster-probe") -> bool:
    """One publish with an id: True on its ack, False on engine_unavailable."""
    client = PubSubClient.connect(server.address)
    try:
        client.publish(topic, '"probe"', id="probe")
        value, raw = client.recv_json(timeout=15)
        if value == {"type": "ack", "id": "probe"}:
            return True
        assert value.get("type") == "error" and value.get("code") == "engine_unavailable", raw
        return False
    finally:
        client.close()


def subscribe_all(clients: list, topics: list[str]) -> None:
    for client in clients:
        client.subscribe(topics, id="s")
    for client in clients:
        client.expect_ack("s")
        assert not client.buffer, f"bytes after the ack: {bytes(client.buffer[:100])!r}"


def test_three_instances_every_message_in_order_exactly_once():
    topic = "cluster/fanout"
    prefix = f"fanout{os.getpid()}:"
    with start_redis() as redis, cluster(redis, prefix) as servers:
        subscribers = []
        try:
            for server in servers:
                subscribers += connect_many(PubSubClient, server.address, 100, path="/ws")
            subscribe_all(subscribers, [topic])
            wait_for(lambda: redis.numsub(prefix + topic) == 3, what="three instances subscribed in Redis")

            # 1,000 messages in three rounds, each from a publisher on another instance; a round is
            # received completely by all 300 subscribers before the next one starts (order across
            # publishers on different instances is not defined, order per publisher is).
            rounds = [(0, range(0, 334)), (1, range(334, 667)), (2, range(667, 1000))]
            for index, sequence in rounds:
                publisher = PubSubClient.connect(servers[index].address)
                try:
                    datas = [b'{"seq":%d,"from":%d}' % (i, index) for i in sequence]
                    publisher.send_raw(b"".join(build_frame(OP_TEXT, publish_text(topic, d)) for d in datas))
                    expect_streams(subscribers, b"".join(message_frame(topic, d) for d in datas), timeout=TIMEOUT)
                    publisher.sync(timeout=60)  # no error (engine_unavailable, rate_limited) came back
                finally:
                    publisher.close()

            # None twice: the next thing every subscriber receives is the next message.
            last = PubSubClient.connect(servers[1].address)
            try:
                last.publish(topic, '"end"', id="end")
                last.expect_ack("end", timeout=60)
            finally:
                last.close()
            expect_streams(subscribers, message_frame(topic, '"end"'), timeout=TIMEOUT)
            for subscriber in subscribers:
                assert not subscriber.buffer, f"bytes after the last message: {bytes(subscriber.buffer[:100])!r}"
        finally:
            for client in subscribers:
                client.close()


def test_http_publish_reaches_websocket_subscribers_on_the_other_instances():
    topic = "cluster/http"
    prefix = f"http{os.getpid()}:"
    with start_redis() as redis, cluster(redis, prefix) as servers:
        clients = [PubSubClient.connect(server.address) for server in servers[1:]]
        try:
            subscribe_all(clients, [topic])
            wait_for(lambda: redis.numsub(prefix + topic) == 2, what="two instances subscribed in Redis")
            response = http_publish(servers[0].address, b'{"topic":"cluster/http","data":{"n":1}}', key=API_KEY)
            assert published_to(response) == 0  # local subscribers of the publishing instance
            for client in clients:
                client.expect_message(topic, '{"n":1}')
            # Binary publishes cross instances byte for byte too.
            sender = PubSubClient.connect(servers[0].address)
            try:
                sender.publish_binary(topic, b"\x00\x01\xff")
                for client in clients:
                    client.expect_binary(bytes([len(topic)]) + topic.encode() + b"\x00\x01\xff")
            finally:
                sender.close()
        finally:
            for client in clients:
                client.close()


def test_redis_restart_during_a_run():
    topic = "cluster/restart"
    prefix = f"restart{os.getpid()}:"
    with start_redis() as redis, cluster(redis, prefix, requires_engine=[True, True, False]) as servers:
        subscribers = [PubSubClient.connect(server.address) for server in servers]
        publishers = [PubSubClient.connect(server.address) for server in servers]
        late = None
        try:
            subscribe_all(subscribers, [topic])
            wait_for(lambda: redis.numsub(prefix + topic) == 3, what="three instances subscribed in Redis")
            publishers[0].publish(topic, '"before"', id="b")
            publishers[0].expect_ack("b")
            for subscriber in subscribers:
                subscriber.expect_message(topic, '"before"')

            redis.kill()
            # Every instance notices; those with readyz_requires_engine report not ready.
            wait_for(lambda: all(http_get_status(s.host, s.port, "/readyz") == 503 for s in servers[:2]),
                     what="/readyz 503 while Redis is down")
            for index, publisher in enumerate(publishers):
                wait_for(lambda: not publish_accepted(servers[index]), what="engine_unavailable")
                publisher.publish(topic, '"during"', id=f"d{index}")
                publisher.expect_error("engine_unavailable", id=f"d{index}")
            response = http_publish(servers[1].address, b'{"topic":"cluster/restart","data":"during"}', key=API_KEY)
            assert response.status != 200 and b"engine_unavailable" in response.body, \
                f"HTTP publish during the outage: {response.raw_head!r} {response.body!r}"
            # pylon stays up and serves what does not need Redis.
            for server in servers:
                assert server.running()
                assert http_get_status(server.host, server.port, "/healthz") == 200
                echo_check(server.address)
            assert http_get_status(servers[2].host, servers[2].port, "/readyz") == 200
            # Interest that begins during the outage is subscribed when Redis is back.
            late = PubSubClient.connect(servers[2].address)
            subscribe_all([late], ["cluster/late"])

            redis.start()
            for server in servers:
                wait_for(lambda: publish_accepted(server), what=f":{server.port} accepting publishes again")
            wait_for(lambda: redis.numsub(prefix + topic) == 3, what="subscriptions restored in Redis")
            assert redis.numsub(prefix + "cluster/late") == 1
            for server in servers[:2]:
                assert http_get_status(server.host, server.port, "/readyz") == 200

            # Same connections, no reconnect by the clients: everything flows again, and nothing
            # published during the outage shows up.
            for index, publisher in enumerate(publishers):
                publisher.publish(topic, b'"after%d"' % index, id=f"a{index}")
                publisher.expect_ack(f"a{index}")
                for subscriber in subscribers:
                    subscriber.expect_message(topic, b'"after%d"' % index)
            publishers[0].publish("cluster/late", '"late"', id="l")
            publishers[0].expect_ack("l")
            late.expect_message("cluster/late", '"late"')
            for client in subscribers + [late]:
                client.sync()
        finally:
            for client in subscribers + publishers + ([late] if late else []):
                client.close()


def test_redis_subscriptions_follow_local_interest():
    prefix = f"interest{os.getpid()}:"
    with start_redis() as redis, cluster(redis, prefix, count=2) as servers:
        a1, a2 = PubSubClient.connect(servers[0].address), PubSubClient.connect(servers[0].address)
        b1 = PubSubClient.connect(servers[1].address)
        try:
            subscribe_all([a1, a2, b1], ["i/one", "i/two"])
            wait_for(lambda: redis.numsub(prefix + "i/one") == 2 and redis.numsub(prefix + "i/two") == 2,
                     what="both instances subscribed")
            # One connection per instance in Redis, however many local subscribers.
            a1.unsubscribe(["i/one"], id="u")
            a1.expect_ack("u")
            assert redis.numsub(prefix + "i/one") == 2  # a2 still holds it on instance 0
            a2.unsubscribe(["i/one"], id="u")
            a2.expect_ack("u")
            wait_for(lambda: redis.numsub(prefix + "i/one") == 1, what="instance 0 to unsubscribe i/one")
            b1.close()  # a connection that goes removes its instance's interest
            # Topic channels only: every instance keeps the control channel, prefix + "#control".
            wait_for(lambda: redis.channels(prefix + "[^#]*") == [prefix + "i/two"],
                     what="only instance 0's i/two left")
            a1.close()
            a2.close()
            wait_for(lambda: redis.channels(prefix + "*") == [prefix + "#control"],
                     what="no topic channel left after the clients went")
        finally:
            for client in (a1, a2, b1):
                client.close()


def test_server_topics_stay_on_their_instance():
    """pylon/stats describes one instance: each subscriber gets its own instance's stats once a
    second, never the other's, and Redis never sees the channel."""
    prefix = f"servertopic{os.getpid()}:"
    with start_redis() as redis, cluster(redis, prefix, count=2) as servers:
        a = PubSubClient.connect(servers[0].address)
        b = [PubSubClient.connect(servers[1].address) for _ in range(3)]
        try:
            for client in [a] + b:  # stats may follow an ack at once: no check of the buffer
                client.subscribe(["pylon/stats", "probe/x"], id="s")
                client.expect_ack("s")
            wait_for(lambda: redis.numsub(prefix + "probe/x") == 2, what="both instances subscribed")
            assert redis.channels(prefix + "pylon/*") == []
            stats = []
            deadline = time.time() + 3.5
            while time.time() < deadline:
                value, _ = a.recv_json(timeout=5)
                assert value["type"] == "message" and value["topic"] == "pylon/stats", value
                stats.append(value["data"])
            # Instance 0 has 1 connection (2 while the readiness probe's close completes),
            # instance 1 has 3: only instance 0's, about once a second.
            counts = [s["connections"] for s in stats]
            assert 2 <= len(stats) <= 5, f"{len(stats)} stats messages in 3.5 s: {counts}"
            assert set(counts) <= {1, 2} and counts[-1] == 1, counts
        finally:
            for client in [a] + b:
                client.close()
