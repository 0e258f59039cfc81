"""HTTP publish API (docs/protocol.md): `POST /api/publish` with `Authorization: Bearer KEY`
reaches WebSocket subscribers with the same envelope; 401 without or with a wrong key, 400 for
malformed bodies, 413 over 1 MiB, 405 for other methods, 404 when no API key is configured."""

import json
import threading

import pytest

from support.pubsub import PUBLISH_PATH, api_key_args, connect, http_publish, published_to, topic  # noqa: F401
from support.server import start_server
from support.wsclient import ConnectionClosed, HttpConnection

API_KEY = "s3cr3t-Key_for.tests"
MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def server():
    with start_server("--threads", "2", *api_key_args(API_KEY)) as running:
        yield running


def error_body(response, status, code=None):
    assert response.status == status, f"expected {status}, got {response.raw_head!r} {response.body[:300]!r}"
    try:
        value = json.loads(response.body)
    except ValueError:
        raise AssertionError(f"{status} body is not JSON: {response.body[:300]!r}")
    assert isinstance(value, dict) and set(value) == {"error", "message"}, f"expected error and message: {value}"
    assert isinstance(value["error"], str) and value["error"], value
    assert isinstance(value["message"], str) and value["message"], value
    if code is not None:
        assert value["error"] == code, f"expected error {code!r}, got {value}"
    return value


# --- success -----------------------------------------------------------------------------------

@pytest.mark.parametrize("data", ['{"price":42}', "null", '"text"', '[1, {"a" : "b"}, 3.25]', "-0.5e-3",
                                  '"h\u00e9llo \\u00e9 \U0001f600"'], ids=range(6))
def test_publish_reaches_subscribers_with_the_websocket_envelope(server, connect, topic, data):
    subscribers = [connect() for _ in range(3)]
    for subscriber in subscribers:
        subscriber.subscribe([topic], id=1)
        subscriber.expect_ack(1)
    response = http_publish(server.address, f'{{"topic":"{topic}","data":{data}}}', API_KEY)
    assert published_to(response) == 3
    assert "application/json" in (response.header("Content-Type") or ""), response.raw_head
    for subscriber in subscribers:
        subscriber.expect_message(topic, data)
        subscriber.sync()


def test_publish_without_subscribers_reports_zero(server, topic):
    assert published_to(http_publish(server.address, f'{{"topic":"{topic}","data":1}}', API_KEY)) == 0


def test_body_keys_in_any_order_and_whitespace_around(server, connect, topic):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    body = f'\n  {{ "data" :  {{"x": [1 ,2]}} ,\t"topic" : "{topic}" }}\r\n'
    assert published_to(http_publish(server.address, body, API_KEY)) == 1
    subscriber.expect_message(topic, '{"x": [1 ,2]}')


def test_http_and_websocket_publishes_keep_their_order(server, connect, topic):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    for i in range(20):
        assert published_to(http_publish(server.address, f'{{"topic":"{topic}","data":{i}}}', API_KEY)) == 1
    for i in range(20):
        subscriber.expect_message(topic, str(i))


def test_keep_alive_connection_publishes_several_times(server, connect, topic):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    conn = HttpConnection(*server.address)
    try:
        for i in range(3):
            conn.request("POST", PUBLISH_PATH, [("Authorization", f"Bearer {API_KEY}"),
                                                ("Content-Type", "application/json")],
                         f'{{"topic":"{topic}","data":{i}}}'.encode())
            assert published_to(conn.read_response()) == 1
    finally:
        conn.close()
    for i in range(3):
        subscriber.expect_message(topic, str(i))


def test_body_of_exactly_one_mebibyte_is_accepted(server, connect, topic):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    head = f'{{"topic":"{topic}","data":"'
    data_len = MAX_BODY - len(head) - 2
    body = head + "d" * data_len + '"}'
    assert len(body) == MAX_BODY
    assert published_to(http_publish(server.address, body, API_KEY)) == 1
    subscriber.expect_message(topic, '"' + "d" * data_len + '"')


# --- authentication ----------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    [],
    [("Authorization", "Bearer wrong")],
    [("Authorization", f"Bearer {API_KEY}x")],
    [("Authorization", f"Bearer {API_KEY[:-1]}")],
    [("Authorization", "Bearer ")],
    [("Authorization", f"Basic {API_KEY}")],
    [("Authorization", API_KEY)],
    [("X-Api-Key", API_KEY)],
], ids=["none", "wrong", "suffix", "prefix", "empty", "basic", "no-scheme", "other-header"])
def test_wrong_or_missing_key_is_401(server, connect, topic, headers):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    response = http_publish(server.address, f'{{"topic":"{topic}","data":1}}', headers=headers)
    assert response.status == 401, f"expected 401, got {response.raw_head!r}"
    assert (response.header("WWW-Authenticate") or "").lower().startswith("bearer"), response.raw_head
    subscriber.sync()  # nothing was published


def test_no_api_keys_configured_means_no_endpoint(connect):
    with start_server("--threads", "2") as server:
        for headers in ([], [("Authorization", "Bearer anything")]):
            response = http_publish(server.address, '{"topic":"a","data":1}', headers=headers)
            assert response.status == 404, f"expected 404, got {response.raw_head!r}"
        response = http_publish(server.address, "", method="GET")
        assert response.status == 404, f"expected 404, got {response.raw_head!r}"


# --- malformed requests ------------------------------------------------------------------------

MALFORMED = {
    "not-json": (b"topic=a&data=1", "bad_json"),
    "truncated": (b'{"topic":"a","data":1', "bad_json"),
    "empty": (b"", None),  # no body at all: bad_json or bad_request
    "array": (b'[{"topic":"a","data":1}]', "bad_json"),
    "string": (b'"a"', "bad_json"),
    "no-topic": (b'{"data":1}', "bad_request"),
    "topic-number": (b'{"topic":1,"data":1}', "bad_request"),
    "topic-null": (b'{"topic":null,"data":1}', "bad_request"),
    "no-data": (b'{"topic":"a"}', "bad_request"),
    "topic-empty": (b'{"topic":"","data":1}', "bad_topic"),
    "topic-129": (b'{"topic":"' + b"t" * 129 + b'","data":1}', "bad_topic"),
    "topic-space": (b'{"topic":"a b","data":1}', "bad_topic"),
    "topic-non-ascii": ('{"topic":"caf\u00e9","data":1}'.encode(), "bad_topic"),
}


@pytest.mark.parametrize("body,code", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_body_is_400(server, body, code):
    response = http_publish(server.address, body, API_KEY)
    value = error_body(response, 400, code)
    if code is None:
        assert value["error"] in ("bad_json", "bad_request"), value


def test_body_over_one_mebibyte_is_413(server, connect, topic):
    subscriber = connect()
    subscriber.subscribe([topic], id=1)
    subscriber.expect_ack(1)
    head = f'{{"topic":"{topic}","data":"'
    body = (head + "d" * (MAX_BODY - len(head) - 1) + '"}').encode()
    assert len(body) == MAX_BODY + 1
    # The server may answer as soon as it has read Content-Length: the body goes from a
    # thread and the answer is read here.
    conn = HttpConnection(*server.address)
    try:
        request = (f"POST {PUBLISH_PATH} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                   f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode()
        conn.send_raw(request)
        writer = threading.Thread(target=lambda: _send_quietly(conn, body))
        writer.start()
        try:
            response = conn.read_response(read_body=False)
        except ConnectionClosed as error:
            pytest.fail(f"no response before the connection closed: {error}")
        writer.join(60)
        assert response.status == 413, f"expected 413, got {response.raw_head!r}"
    finally:
        conn.close()
    subscriber.sync()  # nothing was published


def _send_quietly(conn, data):
    try:
        conn.sock.sendall(data)
    except OSError:
        pass  # the server may stop reading once it has answered 413


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(server, method):
    response = http_publish(server.address, '{"topic":"a","data":1}' if method != "GET" else "",
                            API_KEY, method=method)
    assert response.status == 405, f"expected 405, got {response.raw_head!r}"
    # RFC 9110 §15.5.6: a 405 response MUST carry Allow.
    assert "POST" in (response.header("Allow") or ""), response.raw_head
