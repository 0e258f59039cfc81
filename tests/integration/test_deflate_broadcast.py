"""Compress-once broadcast (issue 7): 1,000 subscribers on /ws that negotiated permessage-deflate
receive byte-identical compressed frames (RSV1 set) for 200 publishes of ~2 KiB JSON, each
inflating to the exact envelope, and `pylon_compressions_total` grows once per message, not once
per subscriber. Mixed: subscribers without deflate get the plain frames, subscribers with a
smaller window their own shared frames (one compression per message per window size). Dedicated
mode compresses every broadcast for each subscriber with its own window (one compression per
message per subscriber): a client inflating with context takeover, as agreed, must read
broadcasts and direct replies interleaved.

The first subscriber of each kind is parsed frame by frame; the others are compared with its raw
bytes in bulk (expect_streams).
"""

from __future__ import annotations

import zlib

from support import deflate
from support.deflate import Inflater, agreed, compressed_frame, compressible_json, compression_counters, \
    connect_many_with_offer, raw_frame, recv_compressed
from support.pubsub import PubSubClient, api_key_args, publish_pipelined, binary_publish, envelope, http_publish, message_frame, publish_text, \
    published_to
from support.server import start_server
from support.wsclient import OP_BINARY, OP_TEXT, RSV1, build_frame, expect_streams

SUBSCRIBERS = 1000
MESSAGES = 200
TIMEOUT = 120.0
SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
SERVER_ARGS = ("--threads", "2", "--ping-interval", "3600", "--max-publish-rate", "1000000")


def subscribe_all(clients, topic):
    for client in clients:
        client.subscribe([topic], id=1)
    for client in clients:
        client.expect_ack(1)  # 21 bytes: under the threshold, uncompressed
        assert not client.buffer, f"bytes after the ack: {bytes(client.buffer[:100])!r}"


def publish_all(publisher, topic, datas, compressed=False):
    """`compressed`: each publish request is itself a compressed frame (the publisher negotiated
    deflate)."""
    return publish_pipelined(publisher, topic, datas, encode=compressed_frame if compressed else build_frame)


def read_compressed_stream(client, topic, datas, window_bits=15):
    """Reads one compressed frame per data from `client`, checks each inflates (with an empty
    window: shared frames carry no context) to the envelope; returns the raw frames."""
    inflater = Inflater(window_bits, takeover=False)
    frames = []
    for i, data in enumerate(datas):
        frame, payload = recv_compressed(client, inflater, timeout=TIMEOUT)
        assert frame.opcode == OP_TEXT and frame.rsv == RSV1, f"message {i}: {frame!r}"
        assert payload == envelope(topic, data), f"message {i} inflates to {payload[:200]!r}"
        frames.append(raw_frame(frame))
    return frames


def payload_of(frame: bytes) -> bytes:
    """The payload of one raw unmasked frame (7- or 16-bit length)."""
    length = frame[1] & 0x7F
    assert length != 127
    return frame[4:] if length == 126 else frame[2:]


def test_thousand_deflate_subscribers_get_identical_frames_compressed_once():
    topic = "deflate/broadcast"
    with start_server(*SERVER_ARGS, "--compression", "shared") as server:
        subscribers = connect_many_with_offer(PubSubClient, server.address, SUBSCRIBERS, "permessage-deflate")
        publisher = PubSubClient.connect(server.address)
        try:
            assert all(agreed(s) == SHARED for s in subscribers), {agreed(s) for s in subscribers}
            subscribe_all(subscribers, topic)
            before = compression_counters(server.address)
            datas = [compressible_json(i) for i in range(MESSAGES)]
            join = publish_all(publisher, topic, datas)
            try:
                frames = read_compressed_stream(subscribers[0], topic, datas)
                expect_streams(subscribers[1:], b"".join(frames), timeout=TIMEOUT)
            finally:
                join()
            publisher.sync(timeout=60)
            after = compression_counters(server.address)
        finally:
            for client in subscribers + [publisher]:
                client.close()
    delta = {key: after[key] - before[key] for key in after}
    assert delta["compressions"] == MESSAGES, \
        f"{delta['compressions']:.0f} compressor runs for {MESSAGES} messages to {SUBSCRIBERS} subscribers"
    payloads = sum(len(payload_of(frame)) for frame in frames)
    plain = sum(len(envelope(topic, data)) for data in datas)
    assert delta["compressed_out"] == SUBSCRIBERS * payloads, delta
    assert delta["uncompressed_out"] == SUBSCRIBERS * plain, delta
    assert delta["compressed_out"] < delta["uncompressed_out"] / 3, delta


def test_mixed_subscribers_plain_and_two_windows():
    topic = "deflate/mixed"
    counts = {"deflate": 500, "plain": 480, "window10": 20}
    offers = {"deflate": "permessage-deflate", "plain": None,
              "window10": "permessage-deflate; server_max_window_bits=10"}
    messages = MESSAGES // 2
    with start_server(*SERVER_ARGS, "--compression", "shared") as server:
        groups = {}
        try:
            for name, count in counts.items():
                groups[name] = connect_many_with_offer(PubSubClient, server.address, count, offers[name])
            # This publisher negotiated deflate too: its publishes arrive compressed.
            publisher = deflate.connect(server.address, "permessage-deflate", path="/ws", cls=PubSubClient)
            groups["publisher"] = [publisher]
            assert agreed(publisher) == SHARED
            assert {agreed(s) for s in groups["deflate"]} == {SHARED}
            assert {agreed(s) for s in groups["plain"]} == {None}
            assert {agreed(s) for s in groups["window10"]} == {SHARED + "; server_max_window_bits=10"}
            everyone = groups["deflate"] + groups["plain"] + groups["window10"]
            subscribe_all(everyone, topic)
            before = compression_counters(server.address)

            datas = [compressible_json(i) for i in range(messages)]
            join = publish_all(publisher, topic, datas, compressed=True)
            try:
                wide = read_compressed_stream(groups["deflate"][0], topic, datas)
                narrow = read_compressed_stream(groups["window10"][0], topic, datas, window_bits=10)
                expect_streams(groups["deflate"][1:], b"".join(wide), timeout=TIMEOUT)
                expect_streams(groups["window10"][1:], b"".join(narrow), timeout=TIMEOUT)
                # Without deflate: the very frames a server without compression sends.
                expect_streams(groups["plain"], b"".join(message_frame(topic, d) for d in datas), timeout=TIMEOUT)
            finally:
                join()
            # Same content, whatever the encoding.
            for i, data in enumerate(datas):
                assert zlib.decompressobj(-15).decompress(payload_of(wide[i]) + deflate.TAIL) == envelope(topic, data)

            # Under the threshold: plain frames for everyone, nothing compressed.
            publisher.publish(topic, "1")
            expect_streams(everyone, message_frame(topic, "1"), timeout=TIMEOUT)
            publisher.sync(timeout=60)
            after = compression_counters(server.address)
            for client in everyone:
                assert not client.buffer, f"bytes after the last message: {bytes(client.buffer[:100])!r}"
        finally:
            for group in groups.values():
                for client in group:
                    client.close()
    delta = after["compressions"] - before["compressions"]
    assert delta == 2 * messages, f"{delta:.0f} compressor runs for {messages} messages in 2 window sizes"


def test_dedicated_subscribers_inflate_with_context_takeover():
    """Dedicated mode agrees context takeover: the client keeps its window across messages. Direct
    replies (errors, compressed with the connection's own window) and broadcasts interleave on the
    same connection; the client must be able to inflate every one of them in order."""
    topic = "deflate/dedicated"
    with start_server(*SERVER_ARGS, "--compression", "dedicated") as server:
        subscriber = deflate.connect(server.address, "permessage-deflate", path="/ws", cls=PubSubClient)
        publisher = PubSubClient.connect(server.address)
        try:
            assert agreed(subscriber) == "permessage-deflate"
            subscribe_all([subscriber], topic)
            inflater = Inflater(takeover=True)
            bad = b'{"type":"no-such-type","id":"a-long-enough-request-id"}'
            for i in range(5):
                subscriber.send_text(bad)  # the error reply is > 64 bytes: compressed, dedicated window
                frame, payload = recv_compressed(subscriber, inflater)
                assert b'"code":"unknown_type"' in payload and b'"id":"a-long-enough-request-id"' in payload, \
                    f"round {i}: the error reply inflates to {payload[:200]!r}"
                data = compressible_json(i, 300)
                publisher.publish(topic, data)
                frame, payload = recv_compressed(subscriber, inflater)
                assert payload == envelope(topic, data), f"round {i}: the broadcast inflates to {payload[:200]!r}"
        finally:
            subscriber.close()
            publisher.close()


def test_dedicated_subscribers_inflate_every_broadcast():
    topic = "deflate/dedicated-many"
    count, messages = 200, 50
    with start_server(*SERVER_ARGS, "--compression", "dedicated") as server:
        subscribers = connect_many_with_offer(PubSubClient, server.address, count, "permessage-deflate")
        publisher = PubSubClient.connect(server.address)
        try:
            assert {agreed(s) for s in subscribers} == {"permessage-deflate"}
            subscribe_all(subscribers, topic)
            before = compression_counters(server.address)
            datas = [compressible_json(i, 1000) for i in range(messages)]
            join = publish_all(publisher, topic, datas)
            sizes = []
            try:
                for subscriber in subscribers:
                    inflater = Inflater(takeover=True)  # as a dedicated-mode client must
                    for i, data in enumerate(datas):
                        frame, payload = recv_compressed(subscriber, inflater, timeout=TIMEOUT)
                        assert payload == envelope(topic, data), f"message {i}: {payload[:200]!r}"
                        sizes.append(len(frame.payload))
            finally:
                join()
            after = compression_counters(server.address)
        finally:
            for client in subscribers + [publisher]:
                client.close()
    delta = after["compressions"] - before["compressions"]
    assert delta == count * messages, f"{delta:.0f} compressor runs for {messages} messages to {count} subscribers"
    # The window each subscriber keeps pays: later messages refer back to earlier ones.
    context_free = len(zlib.compress(envelope(topic, datas[-1]), wbits=-15))
    assert sizes[-1] < context_free, f"{sizes[-1]} bytes with the subscriber's window, {context_free} without"


def test_http_and_binary_publishes_are_compressed_once():
    topic = "deflate/other-paths"
    key = "deflate-test-key"
    with start_server(*SERVER_ARGS, "--compression", "shared", *api_key_args(key)) as server:
        compressed = connect_many_with_offer(PubSubClient, server.address, 10, "permessage-deflate")
        plain = connect_many_with_offer(PubSubClient, server.address, 10, None)
        publisher = PubSubClient.connect(server.address)
        try:
            subscribe_all(compressed + plain, topic)
            before = compression_counters(server.address)

            data = compressible_json(1)
            assert published_to(http_publish(server.address, publish_text(topic, data), key=key)) == 20
            frames = read_compressed_stream(compressed[0], topic, [data])
            expect_streams(compressed[1:], frames[0], timeout=TIMEOUT)
            expect_streams(plain, message_frame(topic, data), timeout=TIMEOUT)

            payload = bytes(range(256)) * 8
            publisher.publish_binary(topic, payload)
            frame, inflated = recv_compressed(compressed[0], Inflater(takeover=False), timeout=TIMEOUT)
            assert frame.opcode == OP_BINARY and inflated == binary_publish(topic, payload), frame
            expect_streams(compressed[1:], raw_frame(frame), timeout=TIMEOUT)
            expect_streams(plain, build_frame(OP_BINARY, binary_publish(topic, payload), mask=False), timeout=TIMEOUT)
            publisher.sync()
            after = compression_counters(server.address)
        finally:
            for client in compressed + plain + [publisher]:
                client.close()
    assert after["compressions"] - before["compressions"] == 2, (before, after)
