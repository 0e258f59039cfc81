"""RFC 6455 §5.2 framing: every length encoding, masking, segment splits, pipelining."""

import random

import pytest

from support.wsclient import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, build_frame,
                              close_payload)

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]


def text_payload(n: int) -> bytes:
    return bytes(0x41 + i % 26 for i in range(n))


def binary_payload(n: int) -> bytes:
    return bytes(i * 7 % 256 for i in range(n))


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_echo_every_length(ws, opcode, length):
    payload = text_payload(length) if opcode == OP_TEXT else binary_payload(length)
    ws.send_frame(opcode, payload)
    # recv_message also checks: unmasked, FIN, RSV 0, minimal length encoding.
    ws.expect_echo(opcode, payload)


@pytest.mark.parametrize("length,form", [(0, 16), (1, 16), (125, 16), (0, 64), (125, 64),
                                         (126, 64), (65535, 64)])
def test_non_minimal_length_encoding_is_1002(ws, length, form):
    ws.send_frame(OP_BINARY, binary_payload(length), length_form=form)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_64bit_length_with_top_bit_set_is_1002(ws, opcode):
    # Only the header: the server must not wait for 2^63 bytes.
    ws.send_raw(build_frame(opcode, b"", declared_length=(1 << 63) + 5, length_form=64))
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE],
                         ids=["text", "binary", "ping", "pong", "close"])
def test_unmasked_client_frame_is_1002(ws, opcode):
    payload = close_payload(1000) if opcode == OP_CLOSE else b"Hello"
    ws.send_frame(opcode, payload, mask=False)
    ws.expect_close(1002)


def test_unmasked_frame_after_valid_ones_is_1002(ws):
    ws.send_text("first")
    ws.expect_echo(OP_TEXT, b"first")
    ws.send_text("second", mask=False)
    ws.expect_close(1002)


@pytest.mark.parametrize("key", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"],
                         ids=["zero", "ones", "counting"])
def test_any_mask_key(ws, key):
    payload = binary_payload(300)
    ws.send_binary(payload, mask=key)
    ws.expect_echo(OP_BINARY, payload)


def test_many_frames_in_one_segment(ws):
    frames = [build_frame(OP_TEXT if i % 2 else OP_BINARY, b"msg-%d" % i) for i in range(200)]
    ws.send_raw(b"".join(frames))
    for i in range(200):
        ws.expect_echo(OP_TEXT if i % 2 else OP_BINARY, b"msg-%d" % i)


def test_mixed_data_and_control_in_one_segment(ws):
    ws.send_raw(build_frame(OP_TEXT, b"a") + build_frame(OP_PING, b"p1") + build_frame(OP_BINARY, b"b")
                + build_frame(OP_PONG, b"ignored") + build_frame(OP_PING, b"p2")
                + build_frame(OP_TEXT, b"c"))
    ws.expect_echo(OP_TEXT, b"a")
    ws.expect_pong(b"p1")
    ws.expect_echo(OP_BINARY, b"b")
    ws.expect_pong(b"p2")
    ws.expect_echo(OP_TEXT, b"c")


@pytest.mark.parametrize("length", [5, 200, 70000], ids=["7bit", "16bit", "64bit"])
def test_one_byte_per_segment(ws, length):
    payload = text_payload(length)
    split = 1 if length < 1000 else [1] * 20 + [997] * 70  # every header byte alone, then chunks
    ws.send_frame(OP_TEXT, payload, split=split)
    ws.expect_echo(OP_TEXT, payload)


def test_ping_one_byte_per_segment(ws):
    ws.send_frame(OP_PING, b"split ping", split=1)
    ws.expect_pong(b"split ping")


@pytest.mark.parametrize("form_length", [10, 300, 70000], ids=["7bit", "16bit", "64bit"])
def test_header_split_at_every_position(ws, form_length):
    payload = binary_payload(form_length)
    frame = build_frame(OP_BINARY, payload)
    header_length = {10: 6, 300: 8, 70000: 14}[form_length]
    for cut in range(1, header_length + 1):
        ws.send_raw(frame, split=[cut])
        ws.expect_echo(OP_BINARY, payload)


def test_random_segment_splits_of_a_pipeline(ws):
    rng = random.Random(6455)
    messages = [(OP_TEXT if rng.random() < 0.5 else OP_BINARY, text_payload(rng.choice([0, 3, 125, 126, 500, 70000])))
                for _ in range(60)]
    stream = b"".join(build_frame(op, p) for op, p in messages)
    sizes, total = [], 0
    while total < len(stream):
        size = rng.choice([1, 2, 3, 7, 13, 100, 1000, 40000])
        sizes.append(size)
        total += size
    ws.send_raw(stream, split=sizes[:-1])
    for op, p in messages:
        ws.expect_echo(op, p)


def test_echo_many_sequential_round_trips(ws):
    for i in range(300):
        ws.send_text(b"round trip %d" % i)
        ws.expect_echo(OP_TEXT, b"round trip %d" % i)
