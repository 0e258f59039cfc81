"""max_message_size: a message of exactly the limit passes; one byte more is 1009, decided as
soon as a frame header announces it (also when the total comes from several fragments)."""

import pytest

from support.wsclient import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, WsClient, build_frame

LIMIT = 65536
DEFAULT_LIMIT = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def server(start_server):
    with start_server("--max-message-size", str(LIMIT)) as running:
        yield running


def payload(opcode, n):
    return b"t" * n if opcode == OP_TEXT else bytes(i % 251 for i in range(n))


OPCODES = pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])


@OPCODES
def test_exactly_the_limit_passes(ws, opcode):
    data = payload(opcode, LIMIT)
    ws.send_frame(opcode, data)
    ws.expect_echo(opcode, data)


@OPCODES
def test_one_byte_over_is_1009(ws, opcode):
    ws.send_frame(opcode, payload(opcode, LIMIT + 1))
    ws.expect_close(1009)


@OPCODES
@pytest.mark.parametrize("declared", [LIMIT + 1, 1 << 20, 1 << 40], ids=["limit+1", "1MiB", "1TiB"])
def test_header_announcing_too_much_is_1009_at_once(ws, opcode, declared):
    # Only the header goes out: the server must not wait for the payload.
    ws.send_raw(build_frame(opcode, b"", declared_length=declared))
    ws.expect_close(1009)


@OPCODES
@pytest.mark.parametrize("pieces", [2, 4, 64], ids=["2", "4", "64"])
def test_exactly_the_limit_in_fragments_passes(ws, opcode, pieces):
    data = payload(opcode, LIMIT)
    size = LIMIT // pieces
    frames = [build_frame(opcode if i == 0 else OP_CONTINUATION, data[i * size:(i + 1) * size], fin=i == pieces - 1)
              for i in range(pieces)]
    ws.send_raw(b"".join(frames))
    ws.expect_echo(opcode, data)


@OPCODES
def test_limit_in_fragments_with_pings_and_empty_fragments(ws, opcode):
    data = payload(opcode, LIMIT)
    ws.send_raw(build_frame(opcode, data[:30000], fin=False) + build_frame(OP_PING, b"p" * 125)
                + build_frame(OP_CONTINUATION, b"", fin=False) + build_frame(OP_CONTINUATION, data[30000:]))
    ws.expect_pong(b"p" * 125)
    ws.expect_echo(opcode, data)


@OPCODES
def test_one_byte_over_in_fragments_is_1009(ws, opcode):
    data = payload(opcode, LIMIT + 1)
    ws.send_raw(build_frame(opcode, data[:32768], fin=False) + build_frame(OP_CONTINUATION, data[32768:]))
    ws.expect_close(1009)


@OPCODES
def test_fragment_header_pushing_over_is_1009_at_once(ws, opcode):
    # First fragment complete (40000 bytes), then only the header of one announcing 30000 more.
    data = payload(opcode, 40000)
    ws.send_raw(build_frame(opcode, data, fin=False)
                + build_frame(OP_CONTINUATION, b"", declared_length=30000, fin=True))
    ws.expect_close(1009)


@OPCODES
def test_last_single_byte_fragment_over_is_1009(ws, opcode):
    data = payload(opcode, LIMIT)
    ws.send_raw(build_frame(opcode, data, fin=False) + build_frame(OP_CONTINUATION, b"x"))
    ws.expect_close(1009)


def test_limit_applies_per_message(ws):
    data = payload(OP_BINARY, LIMIT)
    for _ in range(3):
        ws.send_binary(data)
    for _ in range(3):
        ws.expect_echo(OP_BINARY, data)


def test_default_limit_is_16_mib(start_server):
    with start_server() as default_server:
        client = WsClient.connect(default_server.address, timeout=60)
        try:
            data = bytes(i % 253 for i in range(256)) * (DEFAULT_LIMIT // 256)
            client.send_binary(data)
            client.expect_echo(OP_BINARY, data, timeout=60)
            client.send_raw(build_frame(OP_BINARY, b"", declared_length=DEFAULT_LIMIT + 1))
            client.expect_close(1009)
        finally:
            client.close()
