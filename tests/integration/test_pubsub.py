"""Pub/sub on /ws (docs/protocol.md): delivery, acks, data forwarded byte for byte, ordering,
idempotent subscribe, unsubscribe and disconnect, binary publish. Protocol errors are in
test_pubsub_errors.py, the 1,000-subscriber fan-out in test_pubsub_fanout.py, slow consumers in
test_pubsub_slow_consumer.py, the HTTP API in test_http_publish.py."""

import socket
import struct
import time

import pytest

from support.pubsub import (PubSubClient, api_key_args, binary_publish, connect, http_publish, message_frame,  # noqa: F401
                            published_to, topic)
from support.server import start_server, poll
from support.wsclient import OP_CLOSE, OP_TEXT, build_frame, connect_many, expect_streams

API_KEY = "pubsub-suite-key"
SLACK = 20.0  # seconds added to deadlines: the ASan build is slow


@pytest.fixture(scope="module")
def server():
    with start_server("--threads", "2", *api_key_args(API_KEY)) as running:
        yield running




# --- delivery ----------------------------------------------------------------------------------

def test_subscriber_gets_the_exact_envelope_and_publisher_gets_an_ack(connect, topic):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    publisher.publish(topic, '{"price":42}', id=7)
    publisher.expect_ack(7)
    subscriber.expect_message(topic, '{"price":42}')
    publisher.sync()  # the publisher is not subscribed: it got the ack and nothing else
    subscriber.sync()


DATA = [
    "null", "true", "false", "0", "-1.5e+300", "123456789012345678901234567890",
    '""', r'"h\u00e9llo \"quoted\" \\ \/ tab\t"', '"h\u00e9llo \u20ac \U0001f600"', "[]", "{}",
    '{"a" : [1, 2, {"b":null}] ,\n "c":"d"}',  # whitespace inside the value is part of it
    '[[[[[[[[[[1]]]]]]]]]]',
    '"' + "x" * 70000 + '"',  # a 16-bit then a 64-bit frame length around it
    '{"type":"message","topic":"fake","data":1}',
]


@pytest.mark.parametrize("data", DATA, ids=range(len(DATA)))
def test_data_is_forwarded_byte_for_byte(connect, topic, data):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    publisher.publish(topic, data, id=2)
    publisher.expect_ack(2)
    subscriber.expect_message(topic, data)


@pytest.mark.parametrize("before,after", [("  ", " "), ("\n\t", "\r\n ")], ids=["spaces", "newlines"])
def test_whitespace_around_data_is_not_part_of_it(connect, topic, before, after):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    publisher.send_text(f'{{"type":"publish","topic":"{topic}","data":{before}[1, 2]{after},"id":2}}')
    publisher.expect_ack(2)
    subscriber.expect_message(topic, "[1, 2]")


def test_request_keys_may_come_in_any_order(connect, topic):
    subscriber, publisher = connect(), connect()
    subscriber.send_text(f'{{"id":1,"topics":["{topic}"],"type":"subscribe"}}')
    subscriber.expect_ack(1)
    publisher.send_text(f'{{"data":{{"k":[true]}},"id":"p","topic":"{topic}","type":"publish"}}')
    publisher.expect_ack("p")
    subscriber.expect_message(topic, '{"k":[true]}')


def test_unknown_keys_are_ignored(connect, topic):
    subscriber, publisher = connect(), connect()
    subscriber.send_text(f'{{"type":"subscribe","topics":["{topic}"],"id":1,"extra":{{"x":[1]}}}}')
    subscriber.expect_ack(1)
    publisher.send_text(f'{{"type":"publish","topic":"{topic}","data":2,"id":2,"priority":"high"}}')
    publisher.expect_ack(2)
    subscriber.expect_message(topic, "2")


@pytest.mark.parametrize("request_id", [0, -1, 9007199254740993, 10**30, "abc", "", "\u00fc/\"q\"", "1"],
                         ids=["zero", "negative", "2^53+1", "10^30", "string", "empty", "escapes", "digits"])
def test_ids_are_echoed_verbatim(connect, topic, request_id):
    client = connect()
    client.subscribe([topic], id=request_id)
    client.expect_ack(request_id)
    client.publish(topic, "1", id=request_id)
    client.expect_ack_and_message(request_id, topic, "1")
    client.unsubscribe([topic], id=request_id)
    client.expect_ack(request_id)


def test_success_without_id_is_silent(connect, topic):
    client = connect()
    client.subscribe([topic])
    client.publish(topic, '"own"')
    client.expect_message(topic, '"own"')  # nothing before it: no ack for either request
    client.unsubscribe([topic])
    client.publish(topic, '"gone"')
    client.sync()  # nothing between: no ack, and no delivery after unsubscribing


def test_publisher_subscribed_to_the_topic_receives_its_own_message(connect, topic):
    client = connect()
    client.subscribe([topic], id=1)
    client.expect_ack(1)
    client.publish(topic, '{"self":true}', id=2)
    client.expect_ack_and_message(2, topic, '{"self":true}')
    client.sync()


def test_only_subscribed_topics_are_delivered(connect, topic):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic + ".a", topic + ".b"], id=1)
    subscriber.expect_ack(1)
    for name in (".c", ".a", ".x", ".b", ".a"):
        publisher.publish(topic + name, f'"{name}"', id=name)
        publisher.expect_ack(name)
    subscriber.expect_message(topic + ".a", '".a"')
    subscriber.expect_message(topic + ".b", '".b"')
    subscriber.expect_message(topic + ".a", '".a"')
    subscriber.sync()


@pytest.mark.parametrize("name", ["a", "Z", "0", "_", "-", ".", ":", "/", "@", "AZaz09_-.:/@", "t" * 128],
                         ids=lambda name: f"{len(name)}:{name[:12]}")
def test_every_valid_topic_name_works(connect, name):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([name], id=1)
    subscriber.expect_ack(1)
    publisher.publish(name, '"ok"', id=2)
    publisher.expect_ack(2)
    subscriber.expect_message(name, '"ok"')
    subscriber.unsubscribe([name], id=3)
    subscriber.expect_ack(3)


def test_subscribing_twice_is_idempotent(connect, server, topic):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    subscriber.subscribe([topic], id=2)
    subscriber.expect_ack(2)
    subscriber.subscribe([topic, topic], id=3)
    subscriber.expect_ack(3)
    publisher.publish(topic, '"once"', id=4)
    publisher.expect_ack(4)
    subscriber.expect_message(topic, '"once"')
    subscriber.sync()  # exactly one delivery
    assert published_to(http_publish(server.address, f'{{"topic":"{topic}","data":"http"}}', API_KEY)) == 1
    subscriber.expect_message(topic, '"http"')
    subscriber.sync()
    subscriber.unsubscribe([topic], id=5)  # one unsubscribe undoes all three subscribes
    subscriber.expect_ack(5)
    assert published_to(http_publish(server.address, f'{{"topic":"{topic}","data":"none"}}', API_KEY)) == 0


# --- ordering ----------------------------------------------------------------------------------

def test_several_publishers_each_arrive_in_order(connect, topic):
    per_publisher = 300
    subscriber = connect()
    subscriber.subscribe([topic], id="s")
    subscriber.expect_ack("s")
    publishers = [connect() for _ in range(3)]
    streams = [b"".join(build_frame(OP_TEXT, b'{"type":"publish","topic":"%s","data":[%d,%d]}'
                                    % (topic.encode(), p, i)) for i in range(per_publisher))
               for p in range(len(publishers))]
    # Interleave the three pipelines in chunks so the server sees them concurrently.
    chunk = 4096
    for offset in range(0, max(map(len, streams)), chunk):
        for publisher, stream in zip(publishers, streams):
            publisher.send_raw(stream[offset:offset + chunk])
    for publisher in publishers:
        publisher.sync()  # no error for any of the pipelined publishes
    next_expected = [0] * len(publishers)
    for _ in range(per_publisher * len(publishers)):
        value, raw = subscriber.recv_json()
        assert value.get("type") == "message" and value.get("topic") == topic, raw
        p, i = value["data"]
        assert i == next_expected[p], f"publisher {p}: got message {i}, expected {next_expected[p]}"
        next_expected[p] += 1
    subscriber.sync()  # none twice


def test_subscribers_on_every_loop_thread_get_every_message(server, topic):
    # 50 connections: SO_REUSEPORT spreads them over both loop threads (all on one thread has
    # probability 2^-49).
    subscribers = connect_many(PubSubClient, server.address, 50, path="/ws")
    publisher = PubSubClient.connect(server.address)
    try:
        for subscriber in subscribers:
            subscriber.subscribe([topic], id=1)
        for subscriber in subscribers:
            subscriber.expect_ack(1)
        datas = [b'{"n":%d}' % i for i in range(500)]
        publisher.send_raw(b"".join(build_frame(OP_TEXT, b'{"type":"publish","topic":"%s","data":%s}'
                                                % (topic.encode(), data)) for data in datas))
        expected = b"".join(message_frame(topic, data) for data in datas)
        expect_streams(subscribers, expected, timeout=30 + SLACK)
        publisher.sync()
        for subscriber in subscribers[:5]:
            subscriber.sync()
    finally:
        for client in subscribers + [publisher]:
            client.close()


# --- unsubscribe and disconnect ----------------------------------------------------------------

def test_unsubscribe_stops_delivery(connect, topic):
    subscriber, control, publisher = connect(), connect(), connect()
    marker = topic + ".marker"
    subscriber.subscribe([topic, marker], id=1)
    subscriber.expect_ack(1)
    control.subscribe([topic], id=1)
    control.expect_ack(1)
    publisher.publish(topic, '"before"', id=2)
    publisher.expect_ack(2)
    subscriber.expect_message(topic, '"before"')
    control.expect_message(topic, '"before"')

    subscriber.unsubscribe([topic], id=3)
    subscriber.expect_ack(3)
    publisher.publish(topic, '"after"', id=4)
    publisher.expect_ack(4)
    publisher.publish(marker, '"marker"', id=5)
    publisher.expect_ack(5)
    control.expect_message(topic, '"after"')  # it was published
    subscriber.expect_message(marker, '"marker"')  # and the unsubscribed one did not get it
    subscriber.sync()


def test_unsubscribing_a_topic_not_subscribed_is_acked(connect, topic):
    client = connect()
    client.unsubscribe([topic, topic + ".other"], id=1)
    client.expect_ack(1)
    client.subscribe([topic], id=2)
    client.expect_ack(2)
    client.unsubscribe([topic], id=3)
    client.expect_ack(3)
    client.unsubscribe([topic], id=4)
    client.expect_ack(4)


def test_ping_is_acked_and_silent_without_id(connect, topic):
    """The application's heartbeat (browsers cannot see WebSocket pings): an ack, nothing else."""
    client = connect()
    client.send_text('{"type":"ping","id":"hb-1"}')
    client.expect_ack("hb-1")
    client.send_text('{"type":"ping"}')
    client.sync()  # the ping without id was answered by nothing


def test_disconnected_subscribers_are_removed(server, topic):
    count = 12
    subscribers = connect_many(PubSubClient, server.address, count, path="/ws")
    try:
        for subscriber in subscribers:
            subscriber.subscribe([topic], id=1)
        for subscriber in subscribers:
            subscriber.expect_ack(1)
        assert published_to(http_publish(server.address, f'{{"topic":"{topic}","data":0}}', API_KEY)) == count
        for subscriber in subscribers:
            subscriber.expect_message(topic, "0")

        def subscribers_now():
            return published_to(http_publish(server.address, f'{{"topic":"{topic}","data":1}}', API_KEY))

        # A third close cleanly (close handshake), a third just close TCP, a third reset it.
        for subscriber in subscribers[:4]:
            subscriber.send_close(1000)
            frames = []
            while not frames or frames[-1].opcode != OP_CLOSE:
                frames.append(subscriber.recv_frame())
            assert frames[-1].close_code == 1000, frames
            subscriber.expect_eof()
        poll(lambda: subscribers_now() == count - 4, SLACK, "8 subscribers after 4 clean closes")
        for subscriber in subscribers[4:8]:
            subscriber.sock.shutdown(socket.SHUT_WR)
            subscriber.close()
        for subscriber in subscribers[8:]:
            subscriber.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            subscriber.close()  # RST
        poll(lambda: subscribers_now() == 0, SLACK, "0 subscribers after every subscriber left")
    finally:
        for client in subscribers:
            client.close()


# --- binary publish ----------------------------------------------------------------------------

PAYLOADS = [b"", b"\x00", bytes(range(256)), b"\xff\xfe not UTF-8 \xc3", bytes(i * 7 % 256 for i in range(100_000))]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_binary_publish_round_trip(connect, topic, payload):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    publisher.publish_binary(topic, payload)
    subscriber.expect_binary(binary_publish(topic, payload))
    publisher.sync()  # no ack for a binary publish


def test_binary_and_text_publishes_keep_their_order(connect):
    name = "b" * 128  # the longest topic: N = 128
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([name], id=1)
    subscriber.expect_ack(1)
    for i in range(20):
        if i % 2:
            publisher.publish_binary(name, b"bin %d" % i)
        else:
            publisher.publish(name, str(i))
    publisher.sync()
    for i in range(20):
        if i % 2:
            subscriber.expect_binary(binary_publish(name, b"bin %d" % i))
        else:
            subscriber.expect_message(name, str(i))
    subscriber.sync()


def test_binary_publish_reaches_a_subscribed_publisher(connect, topic):
    client = connect()
    client.subscribe([topic], id=1)
    client.expect_ack(1)
    client.publish_binary(topic, b"\x01\x02")
    client.expect_binary(binary_publish(topic, b"\x01\x02"))
    client.sync()
