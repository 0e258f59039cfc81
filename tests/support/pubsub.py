"""Pub/sub on `/ws` and `POST /api/publish` (docs/protocol.md) for the black-box suites.

Requests are built as JSON text so that a test controls every byte (`data` is inserted
verbatim, as the server must forward it); `envelope()` and `message_frame()` give the exact
bytes a subscriber must receive. `PubSubClient` is the raw client of wsclient.py with the
protocol's requests and checks on top.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Collection, Optional, Sequence, Union

import pytest

from .wsclient import OP_BINARY, OP_TEXT, WsClient, build_frame, http_request, HttpResponse

PUBSUB_PATH = "/ws"
PUBLISH_PATH = "/api/publish"

NO_ID = object()  # expect_error(): the error must carry no id

ERROR_CODES = ("bad_json", "bad_request", "unknown_type", "bad_topic", "too_many_subscriptions",
               "rate_limited")

JsonText = Union[str, bytes]  # a JSON value as text, inserted verbatim


def _text(value: JsonText) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def dumps(value: Any) -> bytes:
    """Compact JSON (no spaces), non-ASCII kept as UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def request_text(type_: str, *, id: Any = None, raw: Sequence[tuple[str, JsonText]] = (),
                 **fields: Any) -> bytes:
    """`{"type":TYPE, FIELDS..., RAW..., "id":ID}`; `raw` fields are JSON text inserted as is."""
    parts = [b'"type":' + dumps(type_)]
    parts += [dumps(name) + b":" + dumps(value) for name, value in fields.items()]
    parts += [dumps(name) + b":" + _text(value) for name, value in raw]
    if id is not None:
        parts.append(b'"id":' + dumps(id))
    return b"{" + b",".join(parts) + b"}"


def publish_text(topic: str, data: JsonText, id: Any = None) -> bytes:
    return request_text("publish", topic=topic, raw=[("data", data)], id=id)


def envelope(topic: str, data: JsonText) -> bytes:
    """What a subscriber receives: exactly this key order, no spaces, `data` byte for byte."""
    return b'{"type":"message","topic":' + dumps(topic) + b',"data":' + _text(data) + b"}"


def message_frame(topic: str, data: JsonText) -> bytes:
    """The unmasked server frame carrying envelope(topic, data)."""
    return build_frame(OP_TEXT, envelope(topic, data), mask=False)


def binary_publish(topic: Union[str, bytes], payload: bytes, length: Optional[int] = None) -> bytes:
    """`[N][topic][payload]`; `length` overrides N (to build invalid ones)."""
    topic = topic.encode() if isinstance(topic, str) else topic
    return bytes([len(topic) if length is None else length]) + topic + payload


class PubSubClient(WsClient):
    """A raw WebSocket client speaking the /ws protocol."""

    _next_sync = 0

    @classmethod
    def connect(cls, address: tuple[str, int], path: str = PUBSUB_PATH, **kwargs) -> "PubSubClient":
        return super().connect(address, path, **kwargs)

    # --- requests ---------------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], id: Any = None) -> None:
        self.send_text(request_text("subscribe", topics=list(topics), id=id))

    def unsubscribe(self, topics: Sequence[str], id: Any = None) -> None:
        self.send_text(request_text("unsubscribe", topics=list(topics), id=id))

    def publish(self, topic: str, data: JsonText, id: Any = None) -> None:
        self.send_text(publish_text(topic, data, id))

    def publish_binary(self, topic: Union[str, bytes], payload: bytes) -> None:
        self.send_binary(binary_publish(topic, payload))

    # --- what comes back --------------------------------------------------------------------

    def recv_json(self, timeout: float = 15.0) -> tuple[dict, bytes]:
        """The next frame, which must be a TEXT frame holding a JSON object."""
        frame = self.recv_message(timeout)
        assert frame.opcode == OP_TEXT, f"expected a TEXT frame, got {frame!r}"
        try:
            value = json.loads(frame.payload)
        except ValueError:
            raise AssertionError(f"the server sent a TEXT frame that is not JSON: {frame.payload[:200]!r}")
        assert isinstance(value, dict), f"the server sent JSON that is not an object: {frame.payload[:200]!r}"
        return value, frame.payload

    def expect_ack(self, id: Any, timeout: float = 15.0) -> None:
        value, raw = self.recv_json(timeout)
        assert value == {"type": "ack", "id": id}, f"expected the ack of id {id!r}, got {raw[:300]!r}"
        if isinstance(id, int):  # 1.0 or true would compare equal in Python: check the text
            assert re.search(rb'"id"\s*:\s*' + dumps(id) + rb'\s*[,}]', raw), f"id {id!r} not echoed verbatim: {raw!r}"

    def expect_error(self, code: Union[str, Collection[str]], id: Any = NO_ID,
                     timeout: float = 15.0) -> dict:
        """The next frame must be `{"type":"error",["id":ID,]"code":CODE,"message":TEXT}`."""
        value, raw = self.recv_json(timeout)
        codes = (code,) if isinstance(code, str) else tuple(code)
        assert value.get("type") == "error", f"expected an error with code {'/'.join(codes)}, got {raw[:300]!r}"
        assert value.get("code") in codes, f"expected error code {'/'.join(codes)}, got {raw[:300]!r}"
        assert isinstance(value.get("message"), str) and value["message"], f"error without a message: {raw!r}"
        if id is NO_ID:
            assert set(value) == {"type", "code", "message"}, f"unexpected keys (an id?) in {raw!r}"
        else:
            assert set(value) == {"type", "id", "code", "message"}, f"expected keys type, id, code, message: {raw!r}"
            assert value["id"] == id, f"error for id {value['id']!r}, expected {id!r}: {raw!r}"
        return value

    def expect_message(self, topic: str, data: JsonText, timeout: float = 15.0) -> None:
        """The next frame must be exactly the envelope of `data` on `topic`."""
        frame = self.recv_message(timeout)
        expected = envelope(topic, data)
        assert frame.opcode == OP_TEXT and frame.payload == expected, \
            f"expected {expected[:200]!r}, got {frame!r}"

    def expect_ack_and_message(self, id: Any, topic: str, data: JsonText, timeout: float = 15.0) -> None:
        """A subscribed publisher's own publish: its ack and the message, in either order."""
        frames = [self.recv_message(timeout), self.recv_message(timeout)]
        expected = envelope(topic, data)
        messages = [f for f in frames if f.payload == expected]
        assert len(messages) == 1, f"expected the ack of {id!r} and {expected[:200]!r}, got {frames}"
        other = frames[1] if frames[0] is messages[0] else frames[0]
        value = json.loads(other.payload)
        assert value == {"type": "ack", "id": id}, f"expected the ack of {id!r}, got {other!r}"

    def expect_binary(self, payload: bytes, timeout: float = 15.0) -> None:
        frame = self.recv_message(timeout)
        assert frame.opcode == OP_BINARY, f"expected a BINARY message, got {frame!r}"
        assert frame.payload == payload, f"expected {len(payload)} bytes {payload[:60]!r}, got {frame!r}"

    def sync(self, timeout: float = 15.0) -> None:
        """Proves that nothing is pending before this point: sends a request that changes
        nothing (unsubscribing from a topic no test uses) and the very next frame must be its
        ack. A valid request: it resets the server's count of malformed requests."""
        PubSubClient._next_sync += 1
        token = f"sync-{os.getpid()}-{PubSubClient._next_sync}"
        self.unsubscribe(["pylon-test-never-subscribed"], id=token)
        self.expect_ack(token, timeout)



def subscribe_at(client: PubSubClient, topics: Sequence[str], recover: Any = None,
                 id: Any = 1) -> tuple[list[dict], dict]:
    """A subscribe on topics with history (docs/protocol.md "History and recovery"), with
    `recover` when given: returns (the publications sent before the ack, the ack's positions)."""
    raw = [("recover", dumps(recover))] if recover is not None else []
    client.send_text(request_text("subscribe", topics=list(topics), raw=raw, id=id))
    missed = []
    while True:
        value, text = client.recv_json()
        if value.get("type") == "message":
            missed.append(value)
            continue
        assert value.get("type") == "ack" and value.get("id") == id, f"expected the ack, got {text!r}"
        return missed, value.get("positions", {})


def receive_messages(client: PubSubClient, count: int, timeout: float = 30.0) -> list[dict]:
    """The next `count` frames, each a published message, as JSON."""
    messages = [client.recv_json(timeout)[0] for _ in range(count)]
    assert all(message["type"] == "message" for message in messages), messages
    return messages

_key_dir: Optional[str] = None


def api_key_args(secret: str, name: str = "test", scopes: Sequence[str] = ("publish",)) -> list[str]:
    """The `pylon serve` flags of one backend API key: the secret goes into a file (never a flag),
    named `name`, with `scopes`."""
    global _key_dir
    if _key_dir is None:
        _key_dir = tempfile.mkdtemp(prefix="pylon-test-keys-")
    path = os.path.join(_key_dir, name)
    with open(path, "w") as key_file:
        key_file.write(secret + "\n")
    return ["--api-key", f"{name}:key_file={path}", "--api-key", f"{name}:scopes={','.join(scopes)}"]


def http_publish(address: tuple[str, int], body: JsonText, key: Optional[str] = None,
                 method: str = "POST", headers: Sequence[tuple[str, str]] = (),
                 timeout: float = 15.0, path: str = PUBLISH_PATH) -> HttpResponse:
    """One `POST /api/publish` (or `method`, or another backend API `path` such as
    /api/disconnect) with `Authorization: Bearer KEY` when key is set."""
    all_headers = [("Content-Type", "application/json"), ("Connection", "close")]
    if key is not None:
        all_headers.append(("Authorization", f"Bearer {key}"))
    all_headers += list(headers)
    return http_request(address, method, path, all_headers, _text(body), timeout=timeout)


def published_to(response: HttpResponse) -> int:
    """The subscriber count of a successful HTTP publish (asserts the 200 and the body)."""
    assert response.status == 200, f"HTTP publish: {response.raw_head!r} {response.body[:300]!r}"
    value = json.loads(response.body)
    assert isinstance(value, dict) and set(value) == {"subscribers"} and type(value["subscribers"]) is int, \
        f"expected {{\"subscribers\":N}}, got {response.body!r}"
    return value["subscribers"]


def resident_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


# --- fixtures shared by the pub/sub suites (import them into a test module by name) ---------

@pytest.fixture
def connect(server):
    """connect(**kwargs) -> a PubSubClient on `server`'s /ws, closed after the test."""
    opened: list[WsClient] = []

    def open_client(**kwargs) -> PubSubClient:
        client = PubSubClient.connect(server.address, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def topic(request) -> str:
    """A topic name of this test's own (test cases may share one server)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[-100:]


def publish_pipelined(publisher, topic, datas, encode=None, timeout: float = 120):
    """Sends one publish per data as a single pipelined write from a thread (the server may stop
    reading the publisher while its subscribers' queues fill up); returns a join() that raises if
    sending failed. `encode(opcode, payload)` builds each frame (default: a plain masked frame)."""
    import threading
    from support.wsclient import OP_TEXT, build_frame
    encode = encode or build_frame
    pipeline = b"".join(encode(OP_TEXT, publish_text(topic, data)) for data in datas)
    failure = []

    def send():
        try:
            publisher.send_raw(pipeline)
        except OSError as error:
            failure.append(error)
    writer = threading.Thread(target=send)
    writer.start()

    def join():
        writer.join(timeout)
        assert not writer.is_alive(), "the publisher could not send its pipeline"
        assert not failure, f"sending the publishes failed: {failure}"
    return join
