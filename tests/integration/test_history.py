"""Topic history and recovery on one instance (docs/protocol.md "History and recovery"): every
publication of a namespace with history_size carries its offset, offsets have no gaps across
publishers on both loops, a subscribe with `recover` gets exactly what it missed then the live
stream (nothing twice at the seam), `recovered:false` with the position when the history cannot
tell, TTL expiry, cache mode, and a new epoch after a restart."""

import json
import threading
import time

import pytest

from support.deflate import metrics
from support.pubsub import (PubSubClient, api_key_args, connect, dumps, http_publish,  # noqa: F401 (connect: a fixture)
                            receive_messages, request_text, subscribe_at)
from support.server import start_server

API_KEY = "history-key"
# chat: a long stream; short: keeps 3; ttl: one second; prices: cache mode; load: the seam test.
NAMESPACES = ["chat:history_size=1000", "chat:history_ttl=300",
              "short:history_size=3", "short:history_ttl=300",
              "ttl:history_size=100", "ttl:history_ttl=1",
              "prices:history_size=10", "prices:history_ttl=300", "prices:recovery=cache",
              "load:history_size=100000", "load:history_ttl=300"]


def server_args():
    args = ["--threads", "2", *api_key_args(API_KEY), "--max-publish-rate", "100000"]
    for rule in NAMESPACES:
        args += ["--namespace", rule]
    return args


@pytest.fixture(scope="module")
def server():
    with start_server(*server_args()) as running:
        yield running


@pytest.fixture
def name(request):
    """A topic suffix of this test's own."""
    return request.node.name.replace("[", "-").replace("]", "")[-60:]


def publish_http(server, topic, data):
    response = http_publish(server.address, dumps({"topic": topic, "data": data}), API_KEY)
    assert response.status == 200, response.body
    body = json.loads(response.body)
    assert set(body) == {"subscribers", "offset"}, body
    return body["offset"]


def test_envelope_carries_the_offset_only_on_topics_with_history(server, connect, name):
    client = connect()
    missed, positions = subscribe_at(client, [f"chat:{name}", f"plain:{name}"])
    assert missed == [] and set(positions) == {f"chat:{name}"}
    position = positions[f"chat:{name}"]
    assert position["offset"] == 0 and isinstance(position["epoch"], str) and position["epoch"]
    assert "recovered" not in position  # nothing was asked
    assert publish_http(server, f"chat:{name}", {"n": 1}) == 1
    frame = client.recv_message()
    assert frame.payload == b'{"type":"message","topic":"chat:%s","offset":1,"data":{"n":1}}' % name.encode()
    client.publish(f"plain:{name}", "2")
    frame = client.recv_message()
    assert frame.payload == b'{"type":"message","topic":"plain:%s","data":2}' % name.encode()
    client.publish(f"chat:{name}", "3", id=7)  # the publish's ack names its offset
    replies = [client.recv_json()[0] for _ in range(2)]
    assert {"type": "ack", "id": 7, "offset": 2} in replies, replies


def test_offsets_have_no_gaps_across_publishers_on_both_loops(server, connect, name):
    topic = f"chat:{name}"
    subscriber = connect()
    subscribe_at(subscriber, [topic])
    publishers = [connect() for _ in range(4)]  # spread over the two loops by SO_REUSEPORT
    per_publisher, http_publishes = 60, 40
    http_offsets = []

    def by_http():
        for n in range(http_publishes):
            http_offsets.append(publish_http(server, topic, {"http": n}))
    thread = threading.Thread(target=by_http)
    thread.start()
    for n in range(per_publisher):
        for index, publisher in enumerate(publishers):
            publisher.publish(topic, dumps({"ws": index, "n": n}))
    thread.join(60)
    total = per_publisher * len(publishers) + http_publishes
    messages = receive_messages(subscriber, total)
    assert [m["offset"] for m in messages] == list(range(1, total + 1))
    assert len({json.dumps(m["data"], sort_keys=True) for m in messages}) == total
    assert sorted(http_offsets) == sorted(m["offset"] for m in messages if "http" in m["data"])
    for index in range(len(publishers)):  # each publisher's own order is kept
        assert [m["data"]["n"] for m in messages if m["data"].get("ws") == index] == list(range(per_publisher))


def test_reconnect_with_recover_gets_exactly_what_it_missed_then_live(server, connect, name):
    topic = f"chat:{name}"
    first = connect()
    _, positions = subscribe_at(first, [topic])
    epoch = positions[topic]["epoch"]
    for n in range(5):
        publish_http(server, topic, n)
    seen = receive_messages(first, 5)
    first.close()
    for n in range(5, 55):  # published while away
        publish_http(server, topic, n)
    before = metrics(server.address)
    second = connect()
    missed, positions = subscribe_at(second, [topic], recover={topic: {"offset": seen[-1]["offset"], "epoch": epoch}})
    assert positions[topic] == {"offset": 55, "epoch": epoch, "recovered": True}
    assert [m["offset"] for m in missed] == list(range(6, 56))
    assert [m["data"] for m in missed] == list(range(5, 55))
    publish_http(server, topic, "live")
    live = receive_messages(second, 1)
    assert live[0]["offset"] == 56 and live[0]["data"] == "live"
    second.sync()  # nothing else: no duplicate
    after = metrics(server.address)
    assert after['pylon_recoveries_total{result="recovered"}'] == before['pylon_recoveries_total{result="recovered"}'] + 1
    assert after["pylon_history_sent_total"] == before["pylon_history_sent_total"] + 50


def test_recovery_fails_with_the_position_when_history_cannot_tell(server, connect, name):
    topic = f"short:{name}"  # keeps 3
    client = connect()
    _, positions = subscribe_at(client, [topic])
    epoch = positions[topic]["epoch"]
    for n in range(10):
        publish_http(server, topic, n)
    receive_messages(client, 10)
    client.close()
    before = metrics(server.address)
    for top, recover in ((10, {"offset": 2, "epoch": epoch}),     # 3..7 are gone
                         (11, {"offset": 5, "epoch": "other"}),   # another epoch
                         (12, {"offset": 13, "epoch": epoch})):   # ahead of the stream
        again = connect()
        missed, positions = subscribe_at(again, [topic], recover={topic: recover})
        assert missed == []
        assert positions[topic] == {"offset": top, "epoch": epoch, "recovered": False}
        publish_http(server, topic, "next")
        assert receive_messages(again, 1)[0]["offset"] == top + 1  # live from the position on
        again.close()
    covered = connect()
    missed, positions = subscribe_at(covered, [topic], recover={topic: {"offset": 11, "epoch": epoch}})
    assert positions[topic]["recovered"] is True and [m["offset"] for m in missed] == [12, 13]
    after = metrics(server.address)
    assert after['pylon_recoveries_total{result="not_recovered"}'] == \
        before['pylon_recoveries_total{result="not_recovered"}'] + 3


def test_recover_must_be_well_formed(server, connect, name):
    client = connect()
    topic = f"chat:{name}"
    for recover in ('[1]', '{"%s":{"offset":-1,"epoch":"e"}}' % topic, '{"%s":{"offset":1}}' % topic,
                    '{"chat:elsewhere":{"offset":1,"epoch":"e"}}'):
        client.send_text(request_text("subscribe", topics=[topic], raw=[("recover", recover)], id=3))
        error = client.expect_error("bad_request", id=3)
        assert "recover" in error["message"], error
    client.publish_binary(topic, b"bytes")  # no room for an offset in a binary publish
    assert "offset" in client.expect_error("bad_request")["message"]


def test_publications_expire_after_the_ttl(server, connect, name):
    topic = f"ttl:{name}"  # history_ttl = 1 s
    client = connect()
    _, positions = subscribe_at(client, [topic])
    epoch = positions[topic]["epoch"]
    published = time.monotonic()
    for n in range(3):
        publish_http(server, topic, n)
    receive_messages(client, 3)
    missed, positions = subscribe_at(connect(), [topic], recover={topic: {"offset": 0, "epoch": epoch}})
    if time.monotonic() - published < 1.0:  # still within the TTL
        assert positions[topic]["recovered"] is True and len(missed) == 3
    deadline = time.monotonic() + 10
    while True:  # poll until the history no longer reaches back to offset 1
        missed, positions = subscribe_at(connect(), [topic], recover={topic: {"offset": 0, "epoch": epoch}})
        if not positions[topic]["recovered"]:
            break
        assert time.monotonic() < deadline, "publications outlived their TTL by far"
        time.sleep(0.1)
    assert time.monotonic() - published >= 0.9, "expired before its TTL"
    assert missed == []
    # Until the sweep forgets the emptied stream its position stays; then the topic starts over
    # under a new epoch.
    assert positions[topic]["offset"] == (3 if positions[topic]["epoch"] == epoch else 0), positions


def test_cache_mode_sends_the_latest_publication_only(server, connect, name):
    topic = f"prices:{name}"
    client = connect()
    _, positions = subscribe_at(client, [topic])
    epoch = positions[topic]["epoch"]
    for price in (10, 11, 12, 13):
        publish_http(server, topic, {"price": price})
    receive_messages(client, 4)
    for recover in ({"offset": 1, "epoch": epoch}, {"offset": 99, "epoch": "lost"}):
        missed, positions = subscribe_at(connect(), [topic], recover={topic: recover})
        assert [(m["offset"], m["data"]) for m in missed] == [(4, {"price": 13})]
        assert positions[topic] == {"offset": 4, "epoch": epoch, "recovered": True}
    missed, positions = subscribe_at(connect(), [topic], recover={topic: {"offset": 4, "epoch": epoch}})
    assert missed == [] and positions[topic]["recovered"] is True  # up to date


def test_the_seam_under_load_has_no_gap_and_no_duplicate(server, connect, name):
    """A publisher at a steady rate while clients drop and recover in a loop: each client's
    offsets, over all its connections, are 1..N exactly once and in order."""
    topic = f"load:{name}"
    publisher = connect()
    stop = threading.Event()
    published = [0]

    def publish_steadily():
        while not stop.is_set():
            for _ in range(20):
                publisher.publish(topic, str(published[0]))
                published[0] += 1
            time.sleep(0.002)  # about 5,000 per second
    writer = threading.Thread(target=publish_steadily)
    failures = []
    seams = [0]  # recoveries that got publications from history: the seam was crossed

    def subscriber_life(index):
        try:
            seen = []
            position = None
            for round_ in range(25):
                client = PubSubClient.connect(server.address)
                missed, positions = subscribe_at(client, [topic], recover={topic: position} if position else None)
                if position:
                    assert positions[topic]["recovered"] is True, positions
                seen += [m["offset"] for m in missed]
                seams[0] += bool(missed)
                for message in receive_messages(client, 30 + index * 7 + round_):
                    seen.append(message["offset"])
                position = {"offset": seen[-1] if seen else positions[topic]["offset"],
                            "epoch": positions[topic]["epoch"]}
                client.sock.close()  # dropped, no close handshake
            first = seen[0]
            assert seen == list(range(first, first + len(seen))), \
                f"client {index}: not contiguous at {next(i for i in range(1, len(seen)) if seen[i] != seen[i-1] + 1)}"
        except Exception as error:  # reported from the main thread
            failures.append((index, error))
    writer.start()
    try:
        lives = [threading.Thread(target=subscriber_life, args=(i,)) for i in range(4)]
        for life in lives:
            life.start()
        for life in lives:
            life.join(120)
    finally:
        stop.set()
        writer.join(30)
    assert not failures, failures
    assert seams[0] >= 20, f"only {seams[0]} recoveries had anything to recover"


def test_a_restart_changes_the_epoch(name):
    topic = f"chat:{name}"
    with start_server(*server_args()) as first:
        client = PubSubClient.connect(first.address)
        _, positions = subscribe_at(client, [topic])
        publish_http(first, topic, 1)
        epoch = positions[topic]["epoch"]
        client.close()
    with start_server(*server_args()) as second:
        client = PubSubClient.connect(second.address)
        missed, positions = subscribe_at(client, [topic], recover={topic: {"offset": 1, "epoch": epoch}})
        assert missed == []
        assert positions[topic]["recovered"] is False and positions[topic]["offset"] == 0
        assert positions[topic]["epoch"] != epoch
        client.close()
