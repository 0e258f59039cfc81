"""Slow consumers on /ws: a subscriber that stops reading may queue at most max_backpressure
bytes. Under slow_consumer = "close" (the default) it is closed with 1008 "slow consumer"; under
"drop" it stays open and misses the messages that do not fit. Either way the other subscribers
get every message and the server's memory stays bounded.

A stalled subscriber is a client with a tiny SO_RCVBUF (set before connecting, so its TCP
window stays small) that never reads. The kernel still absorbs a few MB for it (the server's
send buffer grows up to tcp_wmem's maximum), so each test pushes well beyond that.
"""

import os
import threading
import time

import pytest

from support.pubsub import (api_key_args, publish_pipelined, PubSubClient, envelope, http_publish, message_frame, publish_text, published_to,
                            resident_bytes)
from support.server import start_server, poll
from support.wsclient import OP_CLOSE, OP_TEXT, ConnectionClosed, build_frame, connect_many, expect_streams

BACKPRESSURE = 65536
FAST = 100
TOPIC = "slow/feed"
API_KEY = "slow-consumer-suite"
TIMEOUT = 300.0
SLACK = 20.0


def server_args(*extra):
    return ("--threads", "2", "--max-backpressure", str(BACKPRESSURE), "--max-publish-rate", "1000000",
            "--ping-interval", "3600", *api_key_args(API_KEY), *extra)


def messages(count, size):
    """`count` distinct JSON values of about `size` bytes each."""
    pad = "x" * size
    return [b'{"seq":%d,"pad":"%s"}' % (i, pad.encode()) for i in range(count)]


def publish_all(publisher, datas, topic=TOPIC):
    return publish_pipelined(publisher, topic, datas)


def publish_in_steps(publisher, datas, readers, step_bytes=BACKPRESSURE // 2, topic=TOPIC):
    """Publishes `datas` in steps of at most `step_bytes` of messages, each step received in
    full by `readers` before the next: a reader that keeps up never has more than one step
    waiting, well under max_backpressure, however the server batches its writes. (What a
    pipelined burst does is test_pipelined_burst_reaches_subscribers_that_keep_up.)"""
    step = []
    size = 0
    for i, data in enumerate(datas):
        step.append(data)
        size += len(envelope(topic, data))
        if i + 1 == len(datas) or size + len(envelope(topic, datas[i + 1])) > step_bytes:
            publisher.send_raw(b"".join(build_frame(OP_TEXT, publish_text(topic, d)) for d in step))
            expect_streams(readers, b"".join(message_frame(topic, d) for d in step), timeout=TIMEOUT)
            step, size = [], 0
    publisher.sync(timeout=60)  # no error for any publish


def subscribe_all(clients, topics):
    for client in clients:
        client.subscribe(topics, id=1)
    for client in clients:
        client.expect_ack(1)


def subscriber_count(server, topic=TOPIC):
    return published_to(http_publish(server.address, f'{{"topic":"{topic}","data":"count"}}', API_KEY))




def test_stalled_subscriber_is_closed_and_the_others_get_everything():
    with start_server(*server_args()) as server:
        slow = PubSubClient.connect(server.address, receive_buffer=4096)
        fast = connect_many(PubSubClient, server.address, FAST, path="/ws")
        publisher = PubSubClient.connect(server.address)
        try:
            subscribe_all([slow] + fast, [TOPIC])
            datas = messages(1000, 8000)  # 8 MB: far more than the kernel absorbs for `slow`
            publish_in_steps(publisher, datas, fast)

            # Removed from the topic although it has not read a byte yet.
            poll(lambda: subscriber_count(server) == FAST, SLACK, "the slow subscriber to be removed")

            # What it finally reads: a prefix of the messages, then close 1008 "slow consumer".
            received = 0
            while True:
                try:
                    frame = slow.recv_frame(timeout=60)
                except ConnectionClosed as error:
                    pytest.fail(f"EOF without a close frame after {received} whole messages: {error}")
                if frame.opcode == OP_CLOSE:
                    break
                assert frame.opcode == OP_TEXT and frame.payload == envelope(TOPIC, datas[received]), \
                    f"message {received} of the slow subscriber: {frame!r}"
                received += 1
            assert frame.close_code == 1008 and frame.close_reason == b"slow consumer", frame
            assert received < len(datas), "the slow subscriber was closed after receiving everything"
            try:
                slow.send_close(1008)
            except OSError:
                pass  # the server need not wait for the answer
            slow.expect_eof(timeout=SLACK)
        finally:
            for client in fast + [slow, publisher]:
                client.close()


def test_stalled_subscriber_misses_messages_under_drop_and_stays_open():
    marker_topic = "slow/marker"
    with start_server(*server_args("--slow-consumer", "drop")) as server:
        slow = PubSubClient.connect(server.address, receive_buffer=4096)
        fast = connect_many(PubSubClient, server.address, FAST, path="/ws")
        publisher = PubSubClient.connect(server.address)
        try:
            subscribe_all([slow], [TOPIC, marker_topic])
            subscribe_all(fast, [TOPIC])
            datas = messages(1000, 8000)
            publish_in_steps(publisher, datas, fast)

            # Drain it. Markers published while its queue is still full are dropped too, so a
            # second publisher keeps publishing markers until one gets through.
            done = threading.Event()
            marker_publisher = PubSubClient.connect(server.address)

            def publish_markers():
                k = 0
                while not done.is_set():
                    k += 1
                    marker_publisher.publish(marker_topic, str(k), id=k)
                    marker_publisher.expect_ack(k)
                    done.wait(0.1)  # pacing between markers
            marker_thread = threading.Thread(target=publish_markers)
            marker_thread.start()
            seqs = []
            try:
                while True:
                    frame = slow.recv_message(timeout=60)
                    assert frame.opcode == OP_TEXT, frame
                    if frame.payload.startswith(b'{"type":"message","topic":"slow/marker"'):
                        break
                    seq = seqs[-1] + 1 if seqs else 0
                    # Whole messages only, in order: find which one this is.
                    while seq < len(datas) and frame.payload != envelope(TOPIC, datas[seq]):
                        seq += 1
                    assert seq < len(datas), f"not one of the published messages, or out of order: {frame!r}"
                    seqs.append(seq)
            finally:
                done.set()
                marker_thread.join(60)
                marker_publisher.close()
            assert seqs, "the slow subscriber received nothing at all"
            assert len(seqs) < len(datas), "nothing was dropped: the subscriber was not slow"

            # Still open and subscribed: a message published now arrives (after any markers).
            publisher.publish(TOPIC, '"after"', id="after")
            publisher.expect_ack("after")
            while True:
                frame = slow.recv_message(timeout=60)
                if not frame.payload.startswith(b'{"type":"message","topic":"slow/marker"'):
                    break
            assert frame.payload == envelope(TOPIC, '"after"'), frame
            slow.sync()
        finally:
            for client in fast + [slow, publisher]:
                client.close()


def test_memory_stays_bounded_with_stalled_subscribers():
    stalled_count = 20
    # ASan keeps freed memory in quarantine (256 MB by default): keep it small so that the
    # sanitizer build measures the server, not the quarantine.
    with start_server(*server_args("--slow-consumer", "drop"),
                      env={"ASAN_OPTIONS": "quarantine_size_mb=16:thread_local_quarantine_size_kb=256:"
                                           + os.environ.get("ASAN_OPTIONS", "")}) as server:
        stalled = [PubSubClient.connect(server.address, receive_buffer=4096) for _ in range(stalled_count)]
        reader = PubSubClient.connect(server.address)
        publisher = PubSubClient.connect(server.address)
        try:
            subscribe_all(stalled + [reader], [TOPIC])

            def push(megabytes, label):
                # One message of ~32 KB per step.
                datas = [b'"%s-%d-%s"' % (label, i, b"m" * 32000) for i in range(megabytes * 32)]
                publish_in_steps(publisher, datas, [reader])

            push(6, b"warm-up")  # fills the stalled ones' kernel buffers and queues
            before = resident_bytes(server.pid)
            push(50, b"load")
            after = resident_bytes(server.pid)
            growth = after - before
            # Unbounded queues would keep ~50 MB for each of the 20 stalled subscribers.
            assert growth < 64 << 20, f"VmRSS grew by {growth >> 20} MiB ({before >> 20} -> {after >> 20} MiB)"
        finally:
            for client in stalled + [reader, publisher]:
                client.close()


def test_pipelined_burst_reaches_subscribers_that_keep_up():
    # 100 publishes of 8 KB in one write: each subscriber's share (800 KB) is far more than
    # max_backpressure but far less than what the kernel takes on an idle socket, so nothing
    # waits for the kernel and no subscriber is slow.
    with start_server(*server_args()) as server:
        subscribers = connect_many(PubSubClient, server.address, 10, path="/ws")
        publisher = PubSubClient.connect(server.address)
        try:
            subscribe_all(subscribers, [TOPIC])
            datas = messages(100, 8000)
            join = publish_all(publisher, datas)
            expect_streams(subscribers, b"".join(message_frame(TOPIC, data) for data in datas), timeout=TIMEOUT)
            join()
            publisher.sync(timeout=60)
        finally:
            for client in subscribers + [publisher]:
                client.close()
