"""Fan-out: 1,000 subscribers on one topic (opened at once, so both loop threads hold some)
receive every one of 10,000 pipelined publishes from one publisher connection, in order, none
twice, none missing; and a burst of publishes read in one go reaches each subscriber in one
write, on one loop or two, on one topic or several (issue 17).

Every subscriber must receive the same bytes after its subscribe ack: the expected stream of
unmasked server frames is computed once and each socket is compared with it in bulk
(expect_streams), without parsing 10 million frames in Python. A large --ping-interval keeps
pings out of the stream.
"""


import socket
import struct

import pytest

from support.pubsub import PubSubClient, message_frame, publish_pipelined, publish_text
from support.server import start_server
from support.wsclient import OP_TEXT, build_frame, connect_many, expect_streams

SUBSCRIBERS = 1000
MESSAGES = 10_000
TOPIC = "fanout/prices"
TIMEOUT = 300.0  # the ASan build moves these 10 million frames several times slower


def test_thousand_subscribers_get_ten_thousand_messages_in_order():
    # The default burst of 1000 publishes would refuse most of a 10,000-message pipeline; the
    # stream (~0.6 MB per subscriber) fits the default backpressure bound, raised anyway so that
    # a slow test machine cannot turn this into a slow-consumer test.
    with start_server("--threads", "2", "--ping-interval", "3600", "--max-publish-rate", "1000000",
                      "--max-backpressure", str(8 << 20)) as server:
        subscribers = connect_many(PubSubClient, server.address, SUBSCRIBERS, path="/ws")
        publisher = PubSubClient.connect(server.address)
        try:
            for subscriber in subscribers:
                subscriber.subscribe([TOPIC], id=1)
            for subscriber in subscribers:
                subscriber.expect_ack(1)
                assert not subscriber.buffer, f"bytes after the ack: {bytes(subscriber.buffer[:100])!r}"

            datas = [b'{"seq":%d,"v":"%x"}' % (i, i * 2654435761 % (1 << 32)) for i in range(MESSAGES)]
            expected = b"".join(message_frame(TOPIC, data) for data in datas)
            # The publisher writes from a thread: the server may stop reading it while its
            # subscribers' queues are full, and they are read here.
            join = publish_pipelined(publisher, TOPIC, datas)
            try:
                expect_streams(subscribers, expected, timeout=TIMEOUT)
            finally:
                join()

            # The publisher was neither refused nor closed: no error before this ack.
            publisher.sync(timeout=60)
            # None twice: the next thing every subscriber receives is the next message.
            publisher.publish(TOPIC, '"end"', id="end")
            publisher.expect_ack("end", timeout=60)
            expect_streams(subscribers, message_frame(TOPIC, '"end"'), timeout=TIMEOUT)
            for subscriber in subscribers:
                assert not subscriber.buffer, f"bytes after the last message: {bytes(subscriber.buffer[:100])!r}"
        finally:
            for client in subscribers + [publisher]:
                client.close()


TCP_INFO_DATA_SEGS_IN = 152  # offsetof(struct tcp_info, tcpi_data_segs_in), Linux >= 4.6


def data_segments_in(client) -> int:
    """Segments with data this client's socket has received. The server sets TCP_NODELAY, so on
    loopback each of its sends of a few hundred bytes arrives as one segment."""
    info = client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("topics", [["burst/a"], ["burst/a", "burst/b"]])
def test_a_burst_of_publishes_reaches_each_subscriber_in_one_write(threads, topics):
    # 40 subscribers opened at once: with 2 loops both hold some (the kernel spreads them over
    # the SO_REUSEPORT listeners), so the publisher's loop hands the burst to the other one.
    with start_server("--threads", str(threads), "--ping-interval", "3600",
                      "--max-publish-rate", "1000000") as server:
        subscribers = connect_many(PubSubClient, server.address, 40, path="/ws")
        publisher = PubSubClient.connect(server.address)
        try:
            for subscriber in subscribers:
                subscriber.subscribe(topics, id=1)
            for subscriber in subscribers:
                subscriber.expect_ack(1)
            before = [data_segments_in(subscriber) for subscriber in subscribers]

            # 100 publishes in one write, the topics interleaved: the server reads them in one go.
            burst = [(topics[i % len(topics)], b'{"seq":%d}' % i) for i in range(100)]
            publisher.send_raw(b"".join(build_frame(OP_TEXT, publish_text(topic, data))
                                        for topic, data in burst))
            # Each topic's publications in their order, topics in the order of their first one.
            expected = b"".join(message_frame(topic, data) for name in topics
                                for topic, data in burst if topic == name)
            expect_streams(subscribers, expected, timeout=30)

            writes = [data_segments_in(s) - b for s, b in zip(subscribers, before)]
            assert writes == [1] * len(subscribers), f"writes per subscriber: {writes}"
        finally:
            for client in subscribers + [publisher]:
                client.close()
