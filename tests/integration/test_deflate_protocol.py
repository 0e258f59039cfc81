"""permessage-deflate (RFC 7692) byte by byte: the Sec-WebSocket-Extensions answer to a set of
offers, and what the server does with compressed frames crafted with Python's zlib: echo,
fragmentation, context takeover, window bits, the bomb limit (1009), corrupt data and invalid
UTF-8 inside (1007), RSV1 where it is not allowed (1002), and the byte counters on /metrics.

Servers run with --max-message-size 65536 so that a bomb is a small frame.
"""

from __future__ import annotations

import os
import zlib

import pytest

from support import deflate
from support.deflate import EXTENSIONS, Inflater, agreed, compress, compressed_frame, recv_compressed
from support.pubsub import resident_bytes
from support.server import start_server
from support.wsclient import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, RSV1,
                              RSV2, RSV3, WsClient, build_frame, close_payload, echo_check)

LIMIT = 65536
THRESHOLD = 64  # the default --compression-threshold
SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def serve(*args):
    return start_server("--max-message-size", str(LIMIT), *args)


@pytest.fixture(scope="module")
def shared():
    with serve("--compression", "shared") as server:
        yield server


@pytest.fixture(scope="module")
def dedicated():
    with serve("--compression", "dedicated") as server:
        yield server


@pytest.fixture(scope="module")
def off():
    with serve("--compression", "off") as server:
        yield server


@pytest.fixture
def ws(shared):
    """A client on the shared-mode server that negotiated plain `permessage-deflate`; after the
    test, the server must still serve a new client."""
    client = deflate.connect(shared.address)
    assert agreed(client) == SHARED
    yield client
    client.close()
    echo_check(shared.address)


def handshake_extensions(server, *offers: str, path="/ws/echo"):
    """The Sec-WebSocket-Extensions values of the 101 for a handshake with one request header per
    offer (several headers when several offers) on the echo endpoint, or on `path` (where the
    message sent back is an error reply of the topic protocol)."""
    client = WsClient.connect(server.address, path, headers=[(EXTENSIONS, offer) for offer in offers])
    if path != "/ws/echo":
        values = client.handshake_response.header_all(EXTENSIONS)
        client.close()
        return values
    try:
        values = client.handshake_response.header_all(EXTENSIONS)
        # Whatever was agreed, the connection works: a compressible message comes back intact.
        message = b"negotiated " * 20
        client.send_text(message)
        frame = client.recv_frame()
        payload = Inflater(takeover=False).inflate(frame.payload) if frame.rsv == RSV1 else frame.payload
        assert frame.opcode == OP_TEXT and payload == message, frame
        assert frame.rsv == (RSV1 if values else 0), f"RSV {frame.rsv} with extensions {values}"
        return values
    finally:
        client.close()


# --- negotiation --------------------------------------------------------------------------------

SHARED_ANSWERS = {
    "permessage-deflate": SHARED,
    "permessage-deflate; client_max_window_bits": SHARED + "; client_max_window_bits=15",
    "permessage-deflate; client_max_window_bits=12": SHARED + "; client_max_window_bits=12",
    "permessage-deflate; server_max_window_bits=10": SHARED + "; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=15": SHARED + "; server_max_window_bits=15",
    'permessage-deflate; server_max_window_bits="10"': SHARED + "; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=8": SHARED + "; server_max_window_bits=8",
    "permessage-deflate; server_no_context_takeover": SHARED,
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits":
        SHARED + "; client_max_window_bits=15",
    "Permessage-Deflate; Server_Max_Window_Bits=9": SHARED + "; server_max_window_bits=9",
    "permessage-deflate ;  client_max_window_bits = 11": SHARED + "; client_max_window_bits=11",
    # The first acceptable offer wins: an invalid one is skipped, other extensions are ignored.
    "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=12": SHARED + "; server_max_window_bits=12",
    "permessage-deflate; server_max_window_bits=7, permessage-deflate": SHARED,
    "x-unknown, permessage-deflate": SHARED,
    "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits": SHARED + "; client_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=11, permessage-deflate; server_max_window_bits=9":
        SHARED + "; server_max_window_bits=11",
    # RFC 9110 §5.6.1: empty list elements are ignored; OWS is spaces and tabs; a comma inside a
    # quoted string does not end the element; quoted-pair in a value (RFC 6455 §9.1).
    ", permessage-deflate": SHARED,
    "permessage-deflate,": SHARED,
    "permessage-deflate;client_max_window_bits": SHARED + "; client_max_window_bits=15",
    "permessage-deflate\t;\tserver_no_context_takeover": SHARED,
    'x; a="b,c", permessage-deflate; server_max_window_bits=11': SHARED + "; server_max_window_bits=11",
    'permessage-deflate; server_max_window_bits="1\\0"': SHARED + "; server_max_window_bits=10",
    'permessage-deflate; client_max_window_bits="15"': SHARED + "; client_max_window_bits=15",
    "PERMESSAGE-DEFLATE": SHARED,
}

DECLINED = [
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits",  # a value is required (§7.1.2.1)
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=abc",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; unknown_param",
    "permessage-deflate; x=1",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate;",
    "permessage-deflate; server_max_window_bits=+9",
    'permessage-deflate; client_max_window_bits=""',
    "x-unknown",
    "x-unknown; permessage-deflate",
]


@pytest.mark.parametrize("offer", SHARED_ANSWERS)
def test_shared_answer(shared, offer):
    assert handshake_extensions(shared, offer) == [SHARED_ANSWERS[offer]]


@pytest.mark.parametrize("offer", DECLINED)
def test_declined_offer_gives_no_extension(shared, offer):
    assert handshake_extensions(shared, offer) == []


def test_offers_in_several_headers(shared):
    values = handshake_extensions(shared, "x-foo; bar=1", "permessage-deflate; client_max_window_bits")
    assert values == [SHARED + "; client_max_window_bits=15"]


def test_no_offer_no_extension(shared):
    client = WsClient.connect(shared.address)
    try:
        assert agreed(client) is None
    finally:
        client.close()


DEDICATED_ANSWERS = {
    "permessage-deflate": "permessage-deflate",
    "permessage-deflate; client_max_window_bits": "permessage-deflate; client_max_window_bits=15",
    "permessage-deflate; server_no_context_takeover": "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover": "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10": "permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover":
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
}


@pytest.mark.parametrize("offer", DEDICATED_ANSWERS)
def test_dedicated_answer(dedicated, offer):
    assert handshake_extensions(dedicated, offer) == [DEDICATED_ANSWERS[offer]]


@pytest.mark.parametrize("offer", ["permessage-deflate", "permessage-deflate; client_max_window_bits"])
def test_off_declines(off, offer):
    assert handshake_extensions(off, offer) == []


def test_configured_window_bits_are_announced():
    with serve("--compression", "shared", "--compression-window-bits", "10") as server:
        assert handshake_extensions(server, "permessage-deflate") == [SHARED + "; server_max_window_bits=10"]
        assert handshake_extensions(server, "permessage-deflate; server_max_window_bits=12") == \
            [SHARED + "; server_max_window_bits=10"]
        assert handshake_extensions(server, "permessage-deflate; server_max_window_bits=9") == \
            [SHARED + "; server_max_window_bits=9"]
        # The window is honoured: a 1500-byte random block repeated is out of reach of 1024 bytes.
        check_window(server, 10)


def check_window(server, bits, offer="permessage-deflate"):
    """The server's replies must fit a window of `bits`: a 1500-byte random block repeated 4 times
    compresses to ~1500 bytes with 15 bits, but cannot shrink with 10 (1024 bytes)."""
    client = deflate.connect(server.address, offer)
    try:
        message = os.urandom(1500) * 4
        client.send_binary(message)
        frame = client.recv_frame()
        assert frame.rsv == RSV1, frame
        if bits >= 11:
            assert len(frame.payload) < 2500, f"{len(frame.payload)} bytes: the repeats were not found"
        else:
            assert len(frame.payload) > 5000, \
                f"{len(frame.payload)} compressed bytes: the server used a window larger than {1 << bits}"
        inflater = zlib.decompressobj(-bits)
        out, data = b"", frame.payload + deflate.TAIL
        while data:  # small output steps: a distance past the window is an error, not a lucky copy
            out += inflater.decompress(data, 256)
            data = inflater.unconsumed_tail
        assert out == message
    finally:
        client.close()


@pytest.mark.parametrize("bits", [15, 10])
def test_offered_server_window_bits_are_honoured(shared, bits):
    check_window(shared, bits, f"permessage-deflate; server_max_window_bits={bits}")


# --- per endpoint: [endpoints."/path"] and --endpoint /path:key=value ----------------------------

DEDICATED = "permessage-deflate"


def test_endpoint_flags_choose_compression_per_path():
    with serve("--compression", "off", "--endpoint", "/ws/echo:compression=dedicated",
               "--endpoint", "/ws/echo:compression_window_bits=11") as server:
        assert handshake_extensions(server, "permessage-deflate") == [DEDICATED + "; server_max_window_bits=11"]
        assert handshake_extensions(server, "permessage-deflate", path="/ws") == []
        check_window(server, 11)


def test_endpoint_tables_in_the_config_file(tmp_path):
    config = tmp_path / "pylon.toml"
    config.write_text('compression = "dedicated"\n'
                      '[endpoints."/ws"]\ncompression = "shared"\ncompression_threshold = 100000\n')
    with serve("--config", str(config)) as server:
        assert handshake_extensions(server, "permessage-deflate") == [DEDICATED]
        assert handshake_extensions(server, "permessage-deflate", path="/ws") == [SHARED]
        # The endpoint's threshold: a 300-byte error reply on /ws goes out uncompressed.
        client = deflate.connect(server.address, path="/ws")
        try:
            client.send_text(b'{"type":"nonsense","id":"' + b"x" * 250 + b'"}')
            frame = client.recv_frame()
            assert frame.opcode == OP_TEXT and frame.rsv == 0 and b"unknown_type" in frame.payload, frame
        finally:
            client.close()


# --- messages -----------------------------------------------------------------------------------

def test_compressed_text_is_echoed_compressed(ws):
    message = b"hello, compressed world! " * 40
    ws.send_raw(compressed_frame(OP_TEXT, message))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert frame.opcode == OP_TEXT and payload == message
    assert len(frame.payload) < len(message) // 4


def test_compressed_binary_is_echoed_compressed(ws):
    message = bytes(range(256)) * 20
    ws.send_raw(compressed_frame(OP_BINARY, message))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert frame.opcode == OP_BINARY and payload == message


@pytest.mark.parametrize("size", [0, 1, THRESHOLD - 1])
def test_below_threshold_reply_is_uncompressed(ws, size):
    message = b"a" * size
    ws.send_raw(compressed_frame(OP_TEXT, message))
    ws.expect_echo(OP_TEXT, message)  # RSV clear, payload as is


@pytest.mark.parametrize("size", [THRESHOLD, THRESHOLD + 1, 4096])
def test_at_threshold_reply_is_compressed(ws, size):
    message = b"b" * size
    ws.send_raw(compressed_frame(OP_TEXT, message))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message


def test_uncompressed_message_on_negotiated_connection(ws):
    # RSV1 is per message: a client may send some messages uncompressed.
    message = b"plain " * 50
    ws.send_text(message)
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message
    ws.send_text(b"short")
    ws.expect_echo(OP_TEXT, b"short")


def test_empty_compressed_message(ws):
    # An empty message compresses to a single 0x00 (an empty stored block, tail removed).
    ws.send_frame(OP_TEXT, b"\x00", rsv=RSV1)
    ws.expect_echo(OP_TEXT, b"")
    ws.send_frame(OP_BINARY, b"", rsv=RSV1)  # §7.2.3.6: zero bytes are also an empty message
    ws.expect_echo(OP_BINARY, b"")


def test_final_block_instead_of_sync_flush(ws):
    # A sender may end the message with a BFINAL block (Z_FINISH) rather than a flush marker.
    for message in [b"finished " * 30, b"again " * 30]:
        c = deflate.compressor()
        ws.send_frame(OP_TEXT, c.compress(message) + c.flush(zlib.Z_FINISH), rsv=RSV1)
        frame, payload = recv_compressed(ws, Inflater(takeover=False))
        assert payload == message


def test_stored_blocks(ws):
    message = os.urandom(3000)  # incompressible: level 0 stored blocks
    ws.send_raw(build_frame(OP_BINARY, compress(message, level=0), rsv=RSV1))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message


@pytest.mark.parametrize("pieces", [2, 3, 10])
def test_fragmented_compressed_message(ws, pieces):
    message = ("fragmented \u20ac\U0001f600 " * 100).encode()
    payload = compress(message)
    cuts = [len(payload) * i // pieces for i in range(pieces + 1)]
    data = b""
    for i in range(pieces):
        data += build_frame(OP_TEXT if i == 0 else OP_CONTINUATION, payload[cuts[i]:cuts[i + 1]],
                            fin=i == pieces - 1, rsv=RSV1 if i == 0 else 0)
    ws.send_raw(data, split=[7] * (len(data) // 7))  # and across small TCP segments
    frame, inflated = recv_compressed(ws, Inflater(takeover=False))
    assert inflated == message


def test_fragmented_with_ping_between(ws):
    message = b"between " * 100
    payload = compress(message)
    half = len(payload) // 2
    ws.send_raw(build_frame(OP_TEXT, payload[:half], fin=False, rsv=RSV1) + build_frame(OP_PING, b"p")
                + build_frame(OP_CONTINUATION, payload[half:]))
    ws.expect_pong(b"p")
    frame, inflated = recv_compressed(ws, Inflater(takeover=False))
    assert inflated == message


def test_empty_compressed_first_fragment(ws):
    message = b"late start " * 20
    payload = compress(message)
    ws.send_raw(build_frame(OP_TEXT, b"", fin=False, rsv=RSV1) + build_frame(OP_CONTINUATION, payload))
    frame, inflated = recv_compressed(ws, Inflater(takeover=False))
    assert inflated == message


def test_many_messages_in_one_write(ws):
    messages = [(b"message %d " % i) * (i % 20 + 1) for i in range(200)]
    ws.send_raw(b"".join(compressed_frame(OP_TEXT, m) for m in messages))
    inflater = Inflater(takeover=False)
    for m in messages:
        frame = ws.recv_frame()
        assert frame.opcode == OP_TEXT and frame.fin
        got = inflater.inflate(frame.payload) if frame.rsv == RSV1 else frame.payload
        assert got == m
        assert frame.rsv == (RSV1 if len(m) >= THRESHOLD else 0), (len(m), frame)


def test_shared_server_does_not_take_over_context(ws):
    # server_no_context_takeover was agreed: the same message twice compresses the same way.
    message = os.urandom(200).hex().encode()
    ws.send_text(message)
    first, _ = recv_compressed(ws, Inflater(takeover=False))
    ws.send_text(message)
    second, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message and second.payload == first.payload


def test_shared_client_context_takeover_is_refused(ws):
    # client_no_context_takeover was agreed, so the server inflates each message with an empty
    # window: a message that refers back into the previous one cannot be inflated (1007).
    c = deflate.compressor()
    message = os.urandom(500).hex().encode()
    ws.send_raw(build_frame(OP_TEXT, compress(message, compressor=c), rsv=RSV1))
    recv_compressed(ws, Inflater(takeover=False))
    ws.send_raw(build_frame(OP_TEXT, compress(message, compressor=c), rsv=RSV1))
    ws.expect_close(1007)


def test_dedicated_context_takeover_both_ways(dedicated):
    client = deflate.connect(dedicated.address)
    try:
        assert agreed(client) == "permessage-deflate"
        c = deflate.compressor()
        inflater = Inflater(takeover=True)
        message = os.urandom(500).hex().encode()
        sizes = []
        for _ in range(3):
            client.send_raw(build_frame(OP_TEXT, compress(message, compressor=c), rsv=RSV1))
            frame, payload = recv_compressed(client, inflater)
            assert payload == message
            sizes.append(len(frame.payload))
        assert sizes[1] < sizes[0] // 10 and sizes[2] < sizes[0] // 10, \
            f"compressed sizes {sizes}: the server's window was not kept across messages"
    finally:
        client.close()


def test_a_dedicated_compressor_is_made_by_the_first_message_out(dedicated):
    # zlib allocates a compressor's whole state at once, ~256 KiB at 15 bits / memLevel 8, and
    # touches ~85 KiB of it: made at the upgrade, 100 idle connections grew the server by 8.5 MiB
    # (2026-12-08); made by the first message out, by 0.6 MiB (the inflaters' state, ~6 KiB
    # each), and with the inflater made by the first message in, by 64 KiB.
    echo_check(dedicated.address)
    before = resident_bytes(dedicated.pid)
    clients = [deflate.connect(dedicated.address) for _ in range(100)]
    try:
        echo_check(dedicated.address)  # every upgrade is done
        grown = resident_bytes(dedicated.pid) - before
        assert grown < 3 << 20, f"100 idle dedicated connections grew the server by {grown >> 10} KiB"
        # The first message out makes it, with the agreed window (test above: kept across messages).
        message = b"made now " * 100
        clients[0].send_raw(compressed_frame(OP_TEXT, message))
        _, payload = recv_compressed(clients[0], Inflater(takeover=True))  # RSV1 set
        assert payload == message
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("offer", ["permessage-deflate; server_no_context_takeover",
                                   "permessage-deflate; client_no_context_takeover"])
def test_dedicated_no_context_takeover_on_request(dedicated, offer):
    client = deflate.connect(dedicated.address, offer)
    try:
        server_resets = "server_no_context_takeover" in offer
        client_resets = "client_no_context_takeover" in offer
        c = deflate.compressor()
        message = os.urandom(500).hex().encode()
        sizes = []
        inflater = Inflater(takeover=not server_resets)
        for _ in range(2):
            payload = compress(message) if client_resets else compress(message, compressor=c)
            client.send_raw(build_frame(OP_TEXT, payload, rsv=RSV1))
            frame, inflated = recv_compressed(client, inflater)
            assert inflated == message
            sizes.append(len(frame.payload))
        if server_resets:
            assert sizes[0] == sizes[1], sizes
        else:
            assert sizes[1] < sizes[0] // 10, sizes
    finally:
        client.close()


# --- the limit: bombs are 1009 ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_exactly_the_limit_inflated_is_accepted(ws, kind):
    message = b"L" * LIMIT
    ws.send_raw(compressed_frame(kind, message))
    frame, payload = recv_compressed(ws, Inflater(takeover=False), timeout=30)
    assert payload == message


@pytest.mark.parametrize("kind", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_one_byte_past_the_limit_is_1009(ws, kind):
    ws.send_raw(compressed_frame(kind, b"L" * (LIMIT + 1)))
    ws.expect_close(1009)


def test_bomb_is_1009(ws):
    bomb = compress(bytes(16 << 20), level=9)  # 16 MiB of zeros in ~16 KiB
    assert len(bomb) < LIMIT // 2
    ws.send_frame(OP_BINARY, bomb, rsv=RSV1)
    ws.expect_close(1009)


def test_bomb_in_first_fragment_is_1009_before_the_message_ends(ws):
    # Issue 7: the inflated size counts against the limit while inflating, "1009 as soon as it is
    # exceeded, not after". Here the message never ends: the server must not wait for it.
    bomb = compress(bytes(4 << 20), level=9)
    ws.send_frame(OP_TEXT, bomb, fin=False, rsv=RSV1)
    ws.expect_close(1009, timeout=10)


def test_bomb_spread_over_fragments_is_1009(ws):
    c = deflate.compressor(level=9)
    # 128 KiB in 8 fragments of one stream: only the last one loses its 00 00 ff ff.
    pieces = [c.compress(bytes(16384)) + c.flush(zlib.Z_SYNC_FLUSH) for _ in range(8)]
    pieces[-1] = pieces[-1][:-4]
    data = b"".join(build_frame(OP_BINARY if i == 0 else OP_CONTINUATION, piece, fin=i == 7,
                                rsv=RSV1 if i == 0 else 0) for i, piece in enumerate(pieces))
    ws.send_raw(data)
    ws.expect_close(1009)


BIG_BOMB = None


def big_bomb() -> bytes:
    """The largest bomb under the frame limit: ~60 MiB of zeros in ~60 KiB."""
    global BIG_BOMB
    if BIG_BOMB is None:
        c = deflate.compressor(level=9)
        data = b"".join(c.compress(bytes(1 << 20)) for _ in range(60)) + c.flush(zlib.Z_SYNC_FLUSH)
        BIG_BOMB = data[:-4]
        assert len(BIG_BOMB) < LIMIT
    return BIG_BOMB


def test_bombs_do_not_grow_memory(shared):
    bomb = big_bomb()
    echo_check(shared.address)
    before = resident_bytes(shared.pid)
    clients = [deflate.connect(shared.address) for _ in range(20)]
    try:
        for client in clients:
            client.send_frame(OP_BINARY, bomb, rsv=RSV1)
        for client in clients:
            client.expect_close(1009, timeout=30)
    finally:
        for client in clients:
            client.close()
    echo_check(shared.address)
    grown = resident_bytes(shared.pid) - before
    # 20 bombs of 60 MiB each: inflating any of them fully would add far more than this.
    assert grown < 48 << 20, f"resident memory grew by {grown >> 20} MiB after 20 bombs"


def gigabyte_bomb() -> bytes:
    """Issue 17's bomb: 1 GiB of zeros from 1.0 MiB (one full-flushed 1 MiB block, repeated)."""
    c = deflate.compressor(level=9)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return (block * 1024)[:-4]


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_a_gigabyte_bomb_at_the_default_limit_is_1009_and_the_server_serves_on(mode):
    """At the default max_message_size (16 MiB) the bomb's 1 MiB frame arrives over several reads
    and is inflated piece by piece, into a buffer that never grows past the limit and is freed
    after (bench/deflate_bomb.py measures the memory). Twice; then the server still inflates."""
    bomb = gigabyte_bomb()
    with start_server("--compression", mode) as server:
        for _ in range(2):
            client = deflate.connect(server.address)
            try:
                client.send_frame(OP_BINARY, bomb, rsv=RSV1)
                client.expect_close(1009, timeout=30)
            finally:
                client.close()
        client = deflate.connect(server.address)
        try:
            message = b"after the bomb " * 1000
            client.send_raw(compressed_frame(OP_BINARY, message))
            assert recv_compressed(client, Inflater())[1] == message
        finally:
            client.close()
        echo_check(server.address)


# --- corrupt data and invalid UTF-8 are 1007 ----------------------------------------------------

@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x07", b"\xfe" + os.urandom(64)],
                         ids=["bad-block-type", "bad-block-type-2", "garbage"])
def test_corrupt_payload_is_1007(ws, payload):
    ws.send_frame(OP_BINARY, payload, rsv=RSV1)
    ws.expect_close(1007)


def test_corrupt_continuation_is_1007(ws):
    # The first fragment ends on a block boundary (a sync flush), so the continuation starts a
    # new block, whose type 3 is invalid (RFC 1951 §3.2.3).
    c = deflate.compressor()
    good = c.compress(b"good start " * 50) + c.flush(zlib.Z_SYNC_FLUSH)
    ws.send_raw(build_frame(OP_BINARY, good, fin=False, rsv=RSV1)
                + build_frame(OP_CONTINUATION, b"\xff\xff\xff\xff" * 4))
    ws.expect_close(1007)


def test_corrupt_after_valid_message(ws):
    message = b"valid first " * 10
    ws.send_raw(compressed_frame(OP_TEXT, message) + build_frame(OP_TEXT, b"\xff\xff", rsv=RSV1))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message
    ws.expect_close(1007)


def test_decompressors_lent_for_split_messages_come_back_clean():
    """Shared mode lends a message spread over several reads a decompressor of the loop's spares
    and takes it back when the message ends, also when it ends in an error: a message that
    follows on another connection of the same loop must inflate as if the decompressor were new."""
    message = ("split over reads \u20ac " * 200).encode()
    payload = compress(message)
    valid = build_frame(OP_TEXT, payload[:40], fin=False, rsv=RSV1) + build_frame(OP_CONTINUATION, payload[40:])
    c = deflate.compressor()
    corrupt = build_frame(OP_BINARY, c.compress(b"good start " * 50) + c.flush(zlib.Z_SYNC_FLUSH), fin=False,
                          rsv=RSV1) + build_frame(OP_CONTINUATION, b"\xff\xff\xff\xff" * 4)
    bomb = build_frame(OP_BINARY, compress(bytes(4 << 20), level=9), fin=False, rsv=RSV1)
    with serve("--threads", "1") as server:
        for bad, code in [(corrupt, 1007), (bomb, 1009), (valid[:60], None)]:
            client = deflate.connect(server.address)
            try:
                client.send_raw(bad, split=[5] * (len(bad) // 5))
                if code is not None:
                    client.expect_close(code)
            finally:
                client.close()  # the third leaves its message unfinished: the connection just goes
            after = deflate.connect(server.address)
            try:
                after.send_raw(valid, split=[9] * (len(valid) // 9))
                frame, echoed = recv_compressed(after, Inflater(takeover=False))
                assert echoed == message
            finally:
                after.close()


@pytest.mark.parametrize("text", [b"abc\xff", b"\xc0\xaf", b"valid \xed\xa0\x80 surrogate",
                                  b"x" * 1000 + b"\xe2\x82"], ids=["ff", "overlong", "surrogate", "truncated"])
def test_invalid_utf8_inside_compressed_text_is_1007(ws, text):
    ws.send_raw(compressed_frame(OP_TEXT, text))
    ws.expect_close(1007)


def test_invalid_utf8_across_compressed_fragments_is_1007(ws):
    payload = compress("€".encode()[:2] + b"(" + b"y" * 200)
    ws.send_raw(build_frame(OP_TEXT, payload[:3], fin=False, rsv=RSV1) + build_frame(OP_CONTINUATION, payload[3:]))
    ws.expect_close(1007)


def test_valid_utf8_split_by_the_compression_is_accepted(ws):
    # Every fragment boundary falls at a different place in the inflated characters.
    message = ("\U0001f600\u20ac\u00b5a" * 300).encode()
    payload = compress(message)
    pieces = [payload[i:i + 5] for i in range(0, len(payload), 5)]
    ws.send_raw(b"".join(build_frame(OP_TEXT if i == 0 else OP_CONTINUATION, piece, fin=i == len(pieces) - 1,
                                     rsv=RSV1 if i == 0 else 0) for i, piece in enumerate(pieces)))
    frame, inflated = recv_compressed(ws, Inflater(takeover=False))
    assert inflated == message


def test_compressed_binary_may_hold_any_bytes(ws):
    message = b"\xff\xfe\xc0" * 100
    ws.send_raw(compressed_frame(OP_BINARY, message))
    frame, payload = recv_compressed(ws, Inflater(takeover=False))
    assert payload == message


# --- RSV1 where it is not allowed is 1002 -------------------------------------------------------

def test_rsv1_on_continuation_is_1002(ws):
    payload = compress(b"two frames " * 20)
    ws.send_raw(build_frame(OP_TEXT, payload[:5], fin=False, rsv=RSV1)
                + build_frame(OP_CONTINUATION, payload[5:], rsv=RSV1))
    ws.expect_close(1002)


def test_rsv1_on_continuation_of_uncompressed_message_is_1002(ws):
    ws.send_raw(build_frame(OP_TEXT, b"plain", fin=False) + build_frame(OP_CONTINUATION, compress(b"x"), rsv=RSV1))
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
def test_rsv1_on_control_frame_is_1002(ws, opcode):
    body = close_payload(1000) if opcode == OP_CLOSE else b"ctl"
    ws.send_frame(opcode, body, rsv=RSV1)
    ws.expect_close(1002)


def test_rsv1_on_control_frame_inside_compressed_message_is_1002(ws):
    payload = compress(b"interrupted " * 20)
    ws.send_raw(build_frame(OP_TEXT, payload[:5], fin=False, rsv=RSV1) + build_frame(OP_PING, b"", rsv=RSV1))
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3], ids=["rsv2", "rsv3", "rsv1+2", "rsv1+3"])
def test_other_rsv_bits_with_deflate_are_1002(ws, rsv):
    ws.send_frame(OP_TEXT, compress(b"other bits"), rsv=rsv)
    ws.expect_close(1002)


def rsv1_is_1002(server, offer):
    client = deflate.connect(server.address, offer)
    try:
        assert agreed(client) is None
        client.send_frame(OP_TEXT, compress(b"not negotiated " * 10), rsv=RSV1)
        client.expect_close(1002)
    finally:
        client.close()


def test_rsv1_without_offer_is_1002(shared):
    rsv1_is_1002(shared, None)


def test_rsv1_after_declined_offer_is_1002(shared):
    rsv1_is_1002(shared, "permessage-deflate; server_max_window_bits=7")


def test_rsv1_with_compression_off_is_1002(off):
    rsv1_is_1002(off, "permessage-deflate")


def test_off_echoes_uncompressed(off):
    client = deflate.connect(off.address)
    try:
        message = b"uncompressed " * 100
        client.send_text(message)
        client.expect_echo(OP_TEXT, message)
    finally:
        client.close()


# --- metrics ------------------------------------------------------------------------------------

def test_byte_counters_count_one_echo():
    with serve("--compression", "shared") as server:
        client = deflate.connect(server.address)
        try:
            before = deflate.compression_counters(server.address)
            message = b'{"compressible":"json","n":1}' * 100
            sent = compress(message)
            client.send_frame(OP_TEXT, sent, rsv=RSV1)
            frame, payload = recv_compressed(client, Inflater(takeover=False))
            assert payload == message
            # Small messages are neither compressed nor counted.
            client.send_text(b"tiny")
            client.expect_echo(OP_TEXT, b"tiny")
            after = deflate.compression_counters(server.address)
        finally:
            client.close()
    delta = {key: after[key] - before[key] for key in after}
    assert delta == {"compressed_in": len(sent), "uncompressed_in": len(message),
                     "compressed_out": len(frame.payload), "uncompressed_out": len(message),
                     "compressions": 1}, delta


# --- the threshold flag -------------------------------------------------------------------------

def test_threshold_flag():
    with serve("--compression", "shared", "--compression-threshold", "1000") as server:
        client = deflate.connect(server.address)
        try:
            for size, compressed in [(999, False), (1000, True), (5000, True)]:
                message = b"t" * size
                client.send_raw(compressed_frame(OP_TEXT, message))
                if compressed:
                    frame, payload = recv_compressed(client, Inflater(takeover=False))
                    assert payload == message
                else:
                    client.expect_echo(OP_TEXT, message)
        finally:
            client.close()


# --- one loop's shared inflater serves every connection of the loop -----------------------------

@pytest.fixture(scope="module")
def one_loop():
    with serve("--compression", "shared", "--threads", "1") as server:
        yield server


def echo_compressed(client, message):
    client.send_raw(compressed_frame(OP_TEXT, message))
    frame, payload = recv_compressed(client, Inflater(takeover=False))
    assert payload == message


@pytest.mark.parametrize("failure", ["bomb", "corrupt", "utf8"])
def test_failed_message_leaves_the_loop_inflater_usable(one_loop, failure):
    other = deflate.connect(one_loop.address)
    bad = deflate.connect(one_loop.address)
    try:
        echo_compressed(other, b"before " * 20)
        if failure == "bomb":
            bad.send_frame(OP_BINARY, compress(bytes(1 << 20)), rsv=RSV1)
            bad.expect_close(1009)
        elif failure == "corrupt":
            bad.send_frame(OP_BINARY, b"\xff\xff\xff", rsv=RSV1)
            bad.expect_close(1007)
        else:
            bad.send_raw(compressed_frame(OP_TEXT, b"abc\xff" * 30))
            bad.expect_close(1007)
        echo_compressed(other, b"after " * 20)
        fresh = deflate.connect(one_loop.address)
        try:
            echo_compressed(fresh, b"fresh " * 20)
        finally:
            fresh.close()
    finally:
        other.close()
        bad.close()


def test_interleaved_fragmented_messages_on_one_loop(one_loop):
    # Two connections of the same loop each half-way through a compressed message: neither may
    # see the other's bytes in its inflated message.
    a, b = deflate.connect(one_loop.address), deflate.connect(one_loop.address)
    try:
        message_a, message_b = b"first connection " * 60, b"second connection " * 60
        payload_a, payload_b = compress(message_a), compress(message_b)
        a.send_frame(OP_TEXT, payload_a[:20], fin=False, rsv=RSV1)
        b.send_frame(OP_TEXT, payload_b[:20], fin=False, rsv=RSV1)
        third = deflate.connect(one_loop.address)
        try:
            echo_compressed(third, b"a third, whole " * 20)
        finally:
            third.close()
        b.send_frame(OP_CONTINUATION, payload_b[20:])
        a.send_frame(OP_CONTINUATION, payload_a[20:])
        assert recv_compressed(b, Inflater(takeover=False))[1] == message_b
        assert recv_compressed(a, Inflater(takeover=False))[1] == message_a
    finally:
        a.close()
        b.close()


# --- dedicated mode: the same limits with a connection's own inflater ---------------------------

def test_dedicated_bomb_is_1009(dedicated):
    client = deflate.connect(dedicated.address)
    try:
        client.send_frame(OP_BINARY, compress(bytes(16 << 20), level=9), rsv=RSV1)
        client.expect_close(1009)
    finally:
        client.close()


def test_dedicated_corrupt_after_valid_messages_is_1007(dedicated):
    client = deflate.connect(dedicated.address)
    try:
        c = deflate.compressor()
        inflater = Inflater(takeover=True)
        for i in range(3):
            message = b"kept context %d " % i * 20
            client.send_frame(OP_TEXT, compress(message, compressor=c), rsv=RSV1)
            assert recv_compressed(client, inflater)[1] == message
        client.send_frame(OP_TEXT, b"\xff\xff\xff", rsv=RSV1)
        client.expect_close(1007)
    finally:
        client.close()


# --- memory per connection ----------------------------------------------------------------------

def resident_per_connection(server, count=200):
    """Resident bytes the server gains per deflate connection that has exchanged one compressed
    message each way (so that every zlib stream it owns is allocated)."""
    echo_check(server.address)
    before = resident_bytes(server.pid)
    clients = []
    try:
        for _ in range(count):
            client = deflate.connect(server.address)
            clients.append(client)
            message = os.urandom(2000).hex().encode()
            client.send_raw(compressed_frame(OP_TEXT, message))
        for client in clients:
            frame = client.recv_frame()
            assert frame.rsv == RSV1 and Inflater().inflate(frame.payload), frame
        return (resident_bytes(server.pid) - before) / count
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("mode,args,most", [
    ("shared", (), 64 << 10),
    # zlib's formula: deflate (1 << 17) + (1 << 17) = 256 KiB, inflate 32 KiB, plus state.
    ("dedicated", (), 400 << 10),
    ("dedicated", ("--compression-window-bits", "9", "--compression-memory-level", "1"), 64 << 10),
], ids=["shared", "dedicated-15-8", "dedicated-9-1"])
def test_memory_per_connection(mode, args, most):
    with serve("--compression", mode, *args) as server:
        per_connection = resident_per_connection(server)
    print(f"{mode} {' '.join(args)}: {per_connection / 1024:.0f} KiB resident per connection")
    assert per_connection < most, f"{per_connection / 1024:.0f} KiB per connection in {mode} mode {args}"
