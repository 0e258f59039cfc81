"""Protocol errors on /ws (docs/protocol.md): each malformed request gets its error code (with
the request's id when it has one) and the connection stays open; all-or-nothing subscribe and
unsubscribe; max_publish_rate; max_subscriptions; the garbage threshold (1008 after exactly 10
malformed requests in a row); invalid binary publishes."""

import json
import time

import pytest

from support.pubsub import NO_ID, PubSubClient, api_key_args, binary_publish, connect, http_publish, topic  # noqa: F401
from support.server import start_server
from support.wsclient import OP_CLOSE, OP_PING, OP_TEXT, build_frame

SLACK = 20.0


@pytest.fixture(scope="module")
def server():
    with start_server("--threads", "2") as running:
        yield running


def still_open(client):
    """A ping must get its pong: the connection is open (a ping is not a request, so this does
    not reset the server's count of malformed requests)."""
    client.send_frame(OP_PING, b"open?")
    client.expect_pong(b"open?")


# --- one malformed request at a time -----------------------------------------------------------

BAD_JSON = {
    "not-json": b"hello",
    "truncated": b'{"type":"subscribe","topics":["a"]',
    "empty": b"",
    "trailing-garbage": b'{"type":"subscribe","topics":["a"],"id":1} x',
    "single-quotes": b"{'type':'subscribe'}",
    "array": b'[{"type":"subscribe","topics":["a"]}]',
    "string": b'"subscribe"',
    "number": b"42",
    "null": b"null",
}

# (request without its id, expected code); each is sent with an id and without one.
WITH_ID = {
    "type-missing": (b'{"topics":["a"]', "unknown_type"),
    "type-unknown": (b'{"type":"subscrib","topics":["a"]', "unknown_type"),
    "type-wrong-case": (b'{"type":"SUBSCRIBE","topics":["a"]', "unknown_type"),
    "type-message": (b'{"type":"message","topic":"a","data":1', "unknown_type"),
    "subscribe-no-topics": (b'{"type":"subscribe"', "bad_request"),
    "subscribe-topics-string": (b'{"type":"subscribe","topics":"a"', "bad_request"),
    "subscribe-topics-number-item": (b'{"type":"subscribe","topics":["a",1]', "bad_request"),
    "subscribe-topics-null-item": (b'{"type":"subscribe","topics":[null]', "bad_request"),
    "subscribe-topics-object": (b'{"type":"subscribe","topics":{"a":1}', "bad_request"),
    "unsubscribe-no-topics": (b'{"type":"unsubscribe"', "bad_request"),
    "unsubscribe-topics-nested": (b'{"type":"unsubscribe","topics":[["a"]]', "bad_request"),
    "publish-no-topic": (b'{"type":"publish","data":1', "bad_request"),
    "publish-topic-number": (b'{"type":"publish","topic":7,"data":1', "bad_request"),
    "publish-topic-array": (b'{"type":"publish","topic":["a"],"data":1', "bad_request"),
    "publish-no-data": (b'{"type":"publish","topic":"a"', "bad_request"),
    "topic-empty": (b'{"type":"subscribe","topics":[""]', "bad_topic"),
    "topic-129-bytes": (b'{"type":"subscribe","topics":["' + b"t" * 129 + b'"]', "bad_topic"),
    "topic-space": (b'{"type":"subscribe","topics":["a b"]', "bad_topic"),
    "topic-hash": (b'{"type":"subscribe","topics":["a#b"]', "bad_topic"),
    "topic-star": (b'{"type":"subscribe","topics":["news.*"]', "bad_topic"),
    "topic-non-ascii": ('{"type":"subscribe","topics":["caf\u00e9"]'.encode(), "bad_topic"),
    "topic-escaped-newline": (b'{"type":"subscribe","topics":["a\\nb"]', "bad_topic"),
    "topic-plus-comma": (b'{"type":"unsubscribe","topics":["a+b,c"]', "bad_topic"),
    "publish-topic-129-bytes": (b'{"type":"publish","topic":"' + b"p" * 129 + b'","data":1', "bad_topic"),
    "publish-topic-empty": (b'{"type":"publish","topic":"","data":1', "bad_topic"),
    "publish-topic-slash-space": (b'{"type":"publish","topic":"a/ b","data":1', "bad_topic"),
}


@pytest.mark.parametrize("text", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_json(connect, text):
    client = connect()
    client.send_text(text)
    client.expect_error("bad_json")
    client.sync()  # still open, nothing else sent


@pytest.mark.parametrize("request_id", [17, "req-17"])
@pytest.mark.parametrize("text,code", WITH_ID.values(), ids=WITH_ID.keys())
def test_malformed_request_with_id(connect, text, code, request_id):
    client = connect()
    client.send_text(text + b',"id":' + (str(request_id).encode() if isinstance(request_id, int)
                                         else b'"' + request_id.encode() + b'"') + b"}")
    client.expect_error(code, id=request_id)
    client.sync()


@pytest.mark.parametrize("text,code", WITH_ID.values(), ids=WITH_ID.keys())
def test_malformed_request_without_id(connect, text, code):
    client = connect()
    client.send_text(text + b"}")
    client.expect_error(code, id=NO_ID)
    client.sync()


@pytest.mark.parametrize("bad_id", [b"1.5", b"true", b"null", b"[1]", b'{"n":1}'],
                         ids=["float", "bool", "null", "array", "object"])
def test_id_of_the_wrong_type_is_a_bad_request(connect, bad_id):
    client = connect()
    client.send_text(b'{"type":"subscribe","topics":["a"],"id":' + bad_id + b"}")
    value, raw = client.recv_json()  # with or without an id: it cannot be echoed as it came
    assert value.get("type") == "error" and value.get("code") == "bad_request", raw
    client.sync()


def test_topic_of_128_bytes_is_valid_and_129_is_not(connect):
    client = connect()
    client.subscribe(["x" * 128], id=1)
    client.expect_ack(1)
    client.subscribe(["x" * 129], id=2)
    client.expect_error("bad_topic", id=2)
    client.publish("y" * 129, "1", id=3)
    client.expect_error("bad_topic", id=3)


# --- all or nothing ----------------------------------------------------------------------------

def test_subscribe_with_one_bad_topic_subscribes_to_none(connect, topic):
    subscriber, publisher = connect(), connect()
    marker = topic + ".marker"
    subscriber.subscribe([marker], id=1)
    subscriber.expect_ack(1)
    subscriber.subscribe([topic + ".ok1", "bad topic", topic + ".ok2"], id=2)
    subscriber.expect_error("bad_topic", id=2)
    for name in (".ok1", ".ok2"):
        publisher.publish(topic + name, "1", id=name)
        publisher.expect_ack(name)
    publisher.publish(marker, '"marker"', id=3)
    publisher.expect_ack(3)
    subscriber.expect_message(marker, '"marker"')  # and nothing from ok1 or ok2 before it


def test_unsubscribe_with_one_bad_topic_unsubscribes_from_none(connect, topic):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe([topic + ".a", topic + ".b"], id=1)
    subscriber.expect_ack(1)
    subscriber.unsubscribe([topic + ".a", "b@d!", topic + ".b"], id=2)
    subscriber.expect_error("bad_topic", id=2)
    publisher.publish(topic + ".a", '"a"', id=3)
    publisher.expect_ack(3)
    publisher.publish(topic + ".b", '"b"', id=4)
    publisher.expect_ack(4)
    subscriber.expect_message(topic + ".a", '"a"')
    subscriber.expect_message(topic + ".b", '"b"')


# --- max_publish_rate ----------------------------------------------------------------------------

def test_publishes_above_the_rate_are_refused_per_connection():
    rate = 10
    with start_server("--threads", "2", "--max-publish-rate", str(rate)) as server:
        subscriber = PubSubClient.connect(server.address)
        publisher = PubSubClient.connect(server.address)
        other = PubSubClient.connect(server.address)
        subscriber.subscribe(["rl"], id=0)
        subscriber.expect_ack(0)
        count = 50
        publisher.send_raw(b"".join(
            build_frame(OP_TEXT, b'{"type":"publish","topic":"rl","data":%d,"id":%d}' % (i, i))
            for i in range(1, count + 1)))
        acked, limited = [], []
        for i in range(1, count + 1):
            value, raw = publisher.recv_json()
            assert value.get("id") == i, f"response {i} out of order: {raw!r}"
            if value == {"type": "ack", "id": i}:
                acked.append(i)
            else:
                assert value.get("type") == "error" and value.get("code") == "rate_limited", raw
                limited.append(i)
        # A burst of one second's worth passes; the 50 requests arrive within milliseconds, so
        # only a few more tokens can have been added meanwhile.
        assert acked[:rate] == list(range(1, rate + 1)), f"acked {acked}"
        assert len(acked) <= 2 * rate, f"{len(acked)} of {count} acked at {rate}/s: {acked}"
        # 30+ rate_limited errors in a row do not count as malformed requests: still open.
        still_open(publisher)
        # The limit is per connection.
        other.publish("rl", '"other"', id="o")
        other.expect_ack("o")
        # Refused publishes were not delivered; accepted ones were, in order.
        for i in acked:
            subscriber.expect_message("rl", str(i))
        subscriber.expect_message("rl", '"other"')

        # Tokens come back with time (nothing to observe but the clock: retry until acked).
        deadline = time.monotonic() + 2 + SLACK
        attempt = 1000
        while True:
            attempt += 1
            publisher.publish("rl", str(attempt), id=attempt)
            value, raw = publisher.recv_json()
            if value == {"type": "ack", "id": attempt}:
                break
            assert value.get("code") == "rate_limited", raw
            assert time.monotonic() < deadline, "no token came back"
            time.sleep(0.2)  # the refill interval of a 10/s bucket: no event to wait for
        subscriber.expect_message("rl", str(attempt))
        subscriber.sync()
        for client in (subscriber, publisher, other):
            client.close()


# --- max_subscriptions -------------------------------------------------------------------------

def test_max_subscriptions():
    with start_server("--threads", "2", "--max-subscriptions", "3") as server:
        client = PubSubClient.connect(server.address)
        publisher = PubSubClient.connect(server.address)
        client.subscribe(["a", "b", "c"], id=1)
        client.expect_ack(1)
        client.subscribe(["d"], id=2)
        client.expect_error("too_many_subscriptions", id=2)
        client.subscribe(["a", "c"], id=3)  # already subscribed: nothing added
        client.expect_ack(3)
        client.unsubscribe(["a"], id=4)
        client.expect_ack(4)
        client.subscribe(["d", "e"], id=5)  # would make 4: all or nothing
        client.expect_error("too_many_subscriptions", id=5)
        client.subscribe(["d"], id=6)
        client.expect_ack(6)
        # Many refusals in a row are not malformed requests: no 1008.
        for i in range(12):
            client.subscribe([f"x{i}"])
            client.expect_error("too_many_subscriptions", id=NO_ID)
        still_open(client)
        for name in ("a", "e", "x0", "b", "d"):
            publisher.publish(name, f'"{name}"', id=name)
            publisher.expect_ack(name)
        client.expect_message("b", '"b"')
        client.expect_message("d", '"d"')
        client.sync()

        fresh = PubSubClient.connect(server.address)  # the limit is per connection
        fresh.subscribe(["a", "b", "c", "d"], id=1)
        fresh.expect_error("too_many_subscriptions", id=1)
        fresh.subscribe(["a", "b", "c"], id=2)
        fresh.expect_ack(2)
        for c in (client, publisher, fresh):
            c.close()


# --- garbage threshold -------------------------------------------------------------------------

MALFORMED = [
    (b"nope", "bad_json"),
    (b'{"type":"nope"}', "unknown_type"),
    (b'{"type":"subscribe"}', "bad_request"),
    (b'{"type":"subscribe","topics":["a b"]}', "bad_topic"),
    (b"[]", "bad_json"),
    (b'{"type":"publish","topic":"a"}', "bad_request"),
    (b"{}", "unknown_type"),
    (b'{"type":"publish","topic":"#","data":1}', "bad_topic"),
    (b"{", "bad_json"),
    (b'{"type":"unsubscribe","topics":7}', "bad_request"),
]


def expect_policy_close(client):
    """Frames until the close (an error for the last request may come first); it must be
    1008 "too many malformed requests"; answer it and expect EOF."""
    frames = []
    while True:
        frame = client.recv_frame()
        if frame.opcode == OP_CLOSE:
            break
        frames.append(frame)
    assert len(frames) <= 1, f"more than the last error before the close: {frames}"
    assert frame.close_code == 1008, f"expected close 1008, got {frame!r}"
    assert frame.close_reason == b"too many malformed requests", frame
    client.send_close(1000)
    client.expect_eof()


def test_ten_malformed_requests_in_a_row_close_with_1008(connect):
    client = connect()
    for text, code in MALFORMED[:9]:
        client.send_text(text)
        client.expect_error(code)
    still_open(client)  # nine are tolerated
    client.send_text(MALFORMED[9][0])
    expect_policy_close(client)


def test_ten_malformed_requests_pipelined_close_with_1008(connect):
    client = connect()
    client.send_raw(b"".join(build_frame(OP_TEXT, text) for text, _ in MALFORMED))
    for text, code in MALFORMED[:9]:
        client.expect_error(code)
    expect_policy_close(client)


def test_a_valid_request_resets_the_count(connect, topic):
    client = connect()
    for text, code in MALFORMED[:9]:
        client.send_text(text)
        client.expect_error(code)
    client.subscribe([topic])  # valid, no id: silent, but it resets the count
    for text, code in MALFORMED[:9]:
        client.send_text(text)
        client.expect_error(code)
    still_open(client)
    client.publish(topic, '"alive"', id=1)
    client.expect_ack_and_message(1, topic, '"alive"')


def test_invalid_binary_publishes_count_too(connect):
    client = connect()
    for _ in range(9):
        client.send_binary(binary_publish("a b", b"x"))
        client.expect_error("bad_topic")
    still_open(client)
    client.send_binary(b"\x00payload")
    expect_policy_close(client)


# --- invalid binary publishes ------------------------------------------------------------------

BAD_BINARY = {
    "empty": (b"", ("bad_request", "bad_topic")),
    "n-zero": (b"\x00payload", ("bad_request", "bad_topic")),
    "n-129": (binary_publish("t" * 129, b"x"), ("bad_request", "bad_topic")),
    "n-255": (bytes([255]) + b"t" * 300, ("bad_request", "bad_topic")),
    "shorter-than-n": (binary_publish("abc", b"", length=5), ("bad_request", "bad_topic")),
    "only-n": (b"\x05", ("bad_request", "bad_topic")),
    "space-in-topic": (binary_publish("a b", b"x"), "bad_topic"),
    "non-ascii-topic": (binary_publish("caf\u00e9".encode(), b"x"), "bad_topic"),
    "nul-in-topic": (binary_publish(b"a\x00", b"x"), "bad_topic"),
}


@pytest.mark.parametrize("data,code", BAD_BINARY.values(), ids=BAD_BINARY.keys())
def test_invalid_binary_publish(connect, topic, data, code):
    client = connect()
    client.send_binary(data)
    client.expect_error(code, id=NO_ID)
    client.sync()
    # A valid one right after still works (exactly N+1 bytes: empty payload).
    client.subscribe([topic], id=1)
    client.expect_ack(1)
    client.publish_binary(topic, b"")
    client.expect_binary(binary_publish(topic, b""))


# --- server topics: pylon/... is published by the server alone --------------------------------

def test_clients_cannot_publish_on_server_topics():
    # No dashboard: nothing of the server's own arrives, so the only frames are the replies.
    with start_server(*api_key_args("k"), "--dashboard", "false") as server:
        client = PubSubClient.connect(server.address)
        try:
            client.subscribe(["pylon/stats", "pylon/custom"], id="s")  # reading is allowed
            client.expect_ack("s")
            for attempt in range(12):  # a policy, not a malformed request: no 1008 after ten
                client.publish("pylon/stats", '{"connections":-1}', id=attempt)
                client.expect_error("reserved_topic", id=attempt)
            client.send_binary(binary_publish("pylon/custom", b"fake"))
            client.expect_error("reserved_topic", id=NO_ID)
            response = http_publish(server.address, '{"topic":"pylon/custom","data":1}', key="k")
            assert response.status == 403 and json.loads(response.body)["error"] == "reserved_topic", response.body
            client.sync()  # the next frame is the sync's ack: none of the publishes was delivered
            still_open(client)
            # Names that merely contain pylon/ are ordinary topics.
            client.subscribe(["app/pylon/x"], id="t")
            client.expect_ack("t")
            client.publish("app/pylon/x", '"ok"', id="p")
            client.expect_ack_and_message("p", "app/pylon/x", '"ok"')
        finally:
            client.close()
